//! The loadgen binary, as the tests that run it as a user would start it.

/// Runs the loadgen binary off the test's runtime (the servers are on it),
/// with JOB_COMPLETION_INDEX set when `index` is given.
pub async fn loadgen(args: Vec<String>, index: Option<u32>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
        c.args(&args);
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        c.output().unwrap()
    })
    .await
    .unwrap()
}
