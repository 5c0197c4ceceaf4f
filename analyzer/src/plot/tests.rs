use super::*;

fn sample() -> Vec<Chart> {
    vec![
        Chart::Shares(vec![
            ("127.0.0.1:8001".into(), 0.61, Some(0.6)),
            ("127.0.0.1:8002".into(), 0.39, Some(0.4)),
        ]),
        Chart::Cdf(
            "$request_time".into(),
            vec![(
                "127.0.0.1:8001".into(),
                vec![(1.0, 0.0), (5.0, 0.5), (80.0, 1.0)],
            )],
        ),
        Chart::OverTime(
            vec![("a".into(), vec![(0.0, 10.0), (1.0, 0.0), (2.0, 12.0)])],
            vec![(1.0, "kill a".into())],
        ),
    ]
}

#[test]
fn svg_names_the_nodes_and_titles() {
    for chart in sample() {
        let svg = String::from_utf8(svg(&chart).unwrap()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        match &chart {
            Chart::Shares(_) => {
                assert!(svg.contains("127.0.0.1:8002"));
                assert!(svg.contains("expected"));
            }
            Chart::Cdf(..) => assert!(svg.contains("($request_time)")),
            Chart::OverTime(..) => {
                assert!(svg.contains("requests/s") && svg.contains("kill a"))
            }
            _ => {}
        }
    }
}

#[test]
fn the_time_axis_starts_at_the_smallest_latency_not_at_zero() {
    let series = vec![(
        "a".to_string(),
        vec![(0.0, 0.0), (0.0, 0.4), (2.0, 0.5), (300.0, 1.0)],
    )];
    let (lo, hi) = time_axis(&series);
    assert!((lo - 1.8).abs() < 1e-9, "{lo}");
    assert!((hi - 330.0).abs() < 1e-9, "{hi}");
    let nothing = vec![("a".to_string(), vec![(0.0, 1.0)])];
    assert_eq!(time_axis(&nothing), (0.001 * 0.9, 0.001 * 1.1));
    let svg = String::from_utf8(svg(&Chart::Cdf("t".into(), series)).unwrap()).unwrap();
    // The axis labels: decades from 10 ms, none down at 0.001 ms.
    let labels: Vec<&str> = svg
        .split("</text>")
        .filter_map(|t| t.rsplit_once('>').map(|(_, label)| label.trim()))
        .collect();
    assert!(
        labels.contains(&"10") && labels.contains(&"100"),
        "{labels:?}"
    );
    for tiny in ["0.001", "0.01", "0.1", "1"] {
        assert!(!labels.contains(&tiny), "{tiny} in {labels:?}");
    }
}

#[test]
fn histogram_bins_hold_every_value_once() {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for v in [0, 0, 1000, 2000, 2000, 50_000, 900_000] {
        h.record(v).unwrap();
    }
    let bins = bins_of(&h);
    assert_eq!(bins.len(), BINS);
    assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 7);
    // Zeros fall in the first bin, which starts at the smallest value
    // above zero: no decades wasted below it.
    assert_eq!(bins[0].2, 3);
    assert!((bins[0].0 - 1.0).abs() < 0.01, "{:?}", bins[0]);
    assert!(bins[BINS - 1].1 >= 899.0 && bins[BINS - 1].2 == 1);
    assert!(bins_of(&Histogram::<u64>::new(3).unwrap()).is_empty());
    let svg = svg(&Chart::Histogram("$request_time".into(), bins)).unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("<rect"));
}

#[test]
fn png_is_a_png_with_text_drawn() {
    let chart = &sample()[0];
    let bytes = png(chart).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Decode and check that something dark (bars, text) was drawn on
    // the white page: a font that failed to load would still draw bars,
    // so also compare against a chart whose only difference is text.
    let decoded = decode(&bytes);
    assert!(decoded.iter().any(|&b| b < 64));
    let mut renamed = chart.clone();
    if let Chart::Shares(nodes) = &mut renamed {
        nodes[0].0 = "a-much-longer-node-name:9999".into();
    }
    assert_ne!(
        decode(&png(&renamed).unwrap()),
        decoded,
        "labels must be rendered"
    );
}

fn decode(bytes: &[u8]) -> Vec<u8> {
    let mut reader = png::Decoder::new(bytes).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    buf
}
