//! Prints a preset's `log_format` text, for scripts that configure a real
//! nginx to write it: `cargo run -q -p logformat --example preset -- lbkit`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    match logformat::presets::PRESETS.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => println!("{text}"),
        None => {
            let names: Vec<&str> = logformat::presets::PRESETS
                .iter()
                .map(|(n, _)| *n)
                .collect();
            eprintln!("preset: no preset {name:?}; one of {}", names.join(", "));
            std::process::exit(2);
        }
    }
}
