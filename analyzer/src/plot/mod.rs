//! Charts for `--plot DIR`: share per node against expected, latency CDF
//! per node, and requests over time per node, each as SVG and PNG. Only
//! bytes; the caller writes them.
//!
//! Text is laid out with a small subset of DejaVu Sans embedded in the
//! binary (assets/), so charts look the same on every machine and nothing
//! depends on system font libraries.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{rows, Context};
use crate::summary::{Summary, Tally};
use hdrhistogram::Histogram;

const SIZE: (u32, u32) = (900, 540);
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
/// Enough points for a smooth curve; the tail past p99 gets its own.
const CDF_STEPS: u32 = 200;
const TAIL: [f64; 4] = [0.995, 0.999, 0.9999, 1.0];
const TIME_BUCKETS: usize = 120;

/// One chart's data, taken from a summary; rendering it is separate.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Node, observed share, expected share (when one is promised).
    Shares(Vec<(String, f64, Option<f64>)>),
    /// Per node: (latency in ms, fraction of requests at or below it); and
    /// the field the latency came from.
    Cdf(String, Vec<(String, Vec<(f64, f64)>)>),
    /// Per node: (seconds since the first line, requests per second); and
    /// what happened when (a scenario's events), marked on the time axis.
    OverTime(Vec<(String, Vec<(f64, f64)>)>, Vec<(f64, String)>),
    /// The latency distribution: (bin's low end ms, high end ms, requests),
    /// bins evenly spaced on a log axis; and the field it came from.
    Histogram(String, Vec<(f64, f64, u64)>),
    /// Any other set of curves (stream timings' CDFs, a sweep's latency
    /// against load, two runs' CDFs).
    Lines(Lines),
}

/// A chart of curves, with marks (a capacity, a knee) on the x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Lines {
    pub stem: &'static str,
    pub title: String,
    pub x: String,
    pub y: String,
    /// Log x (latencies), else linear.
    pub log_x: bool,
    /// y is a fraction, labelled as a percentage (a CDF).
    pub percent_y: bool,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub marks: Vec<(f64, String)>,
}

impl Chart {
    pub fn file_stem(&self) -> &'static str {
        match self {
            Chart::Shares(_) => "share",
            Chart::Cdf(..) => "latency-cdf",
            Chart::OverTime(..) => "over-time",
            Chart::Histogram(..) => "latency-histogram",
            Chart::Lines(l) => l.stem,
        }
    }
}

/// The charts a summary can fill: no latency chart without a timing field,
/// none at all without nodes.
pub fn charts(s: &Summary, cx: &Context<'_>) -> Vec<Chart> {
    let empty = Tally::default();
    let mut nodes = rows(s, cx.expected, &empty);
    nodes.pop(); // `all`
    if nodes.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Chart::Shares(
        nodes
            .iter()
            .map(|r| (cx.node(r.node), r.share, r.expected))
            .collect(),
    )];
    if let Some(field) = cx.timing {
        let series: Vec<_> = nodes
            .iter()
            .filter(|r| !r.tally.latency().is_empty())
            .map(|r| (cx.node(r.node), cdf(r.tally)))
            .collect();
        if !series.is_empty() {
            out.push(Chart::Cdf(field.to_string(), series));
        }
    }
    let buckets = s.over_time(TIME_BUCKETS);
    if let Some((first, ..)) = buckets.first() {
        // over_time's columns are in `s.nodes` order.
        let series = s
            .nodes
            .keys()
            .enumerate()
            .map(|(column, node)| {
                let points = buckets
                    .iter()
                    .map(|(start, _, rates)| ((start - first) as f64, rates[column]))
                    .collect();
                (cx.node(node), points)
            })
            .collect();
        out.push(Chart::OverTime(series, Vec::new()));
    }
    out
}

fn cdf(t: &Tally) -> Vec<(f64, f64)> {
    cdf_of(t.latency())
}

/// A histogram of microseconds as CDF points: (ms, fraction at or below).
pub fn cdf_of(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=CDF_STEPS)
        .map(|i| f64::from(i) / f64::from(CDF_STEPS) * 0.99)
        .chain(TAIL)
        .map(|q| (h.value_at_quantile(q) as f64 / 1000.0, q))
        .collect()
}

/// Bins of a latency histogram the chart shows.
const BINS: usize = 40;

/// A histogram of microseconds in [`BINS`] bins evenly spaced on a log
/// axis from its smallest value above zero to its largest (zeros fall in
/// the first): (low ms, high ms, count). Empty for an empty histogram.
pub fn bins_of(h: &Histogram<u64>) -> Vec<(f64, f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let lo = (h.iter_recorded())
        .map(|v| v.value_iterated_to())
        .find(|v| *v > 0)
        .unwrap_or(1) as f64;
    let hi = (h.max() as f64).max(lo * 1.01);
    let step = (hi / lo).ln() / BINS as f64;
    let mut bins: Vec<(f64, f64, u64)> = (0..BINS)
        .map(|i| {
            let a = lo * (step * i as f64).exp();
            let b = lo * (step * (i + 1) as f64).exp();
            (a / 1000.0, b / 1000.0, 0)
        })
        .collect();
    for v in h.iter_recorded() {
        let x = (v.value_iterated_to() as f64).max(lo);
        let i = (((x / lo).ln() / step) as usize).min(BINS - 1);
        bins[i].2 += v.count_at_value();
    }
    bins
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> Result<Vec<u8>, String> {
    register_font();
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&area, chart).map_err(|e| e.to_string())?;
        area.present().map_err(|e| e.to_string())?;
    }
    Ok(text.into_bytes())
}

/// The chart as a PNG image.
pub fn png(chart: &Chart) -> Result<Vec<u8>, String> {
    register_font();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&area, chart).map_err(|e| e.to_string())?;
        area.present().map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Charts are mostly flat colour: the best compression is 10x smaller
    // than the default and still takes milliseconds.
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is ours and checked by the tests; failing here would
        // only mean text-less charts, never a wrong figure.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Drawn<DB> {
    area.fill(&WHITE)?;
    match chart {
        Chart::Shares(nodes) => shares(area, nodes),
        Chart::Cdf(field, series) => latency(area, field, series),
        Chart::OverTime(series, marks) => over_time(area, series, marks),
        Chart::Histogram(field, bins) => histogram(area, field, bins),
        Chart::Lines(l) => curves(area, l),
    }
}

fn shares<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    nodes: &[(String, f64, Option<f64>)],
) -> Drawn<DB> {
    let top = nodes
        .iter()
        .map(|(_, share, expected)| share.max(expected.unwrap_or(0.0)))
        .fold(0.0, f64::max);
    let n = nodes.len() as i32;
    let mut chart = ChartBuilder::on(area)
        .caption("Share of requests per node", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        // A segmented 0..k has k+1 segments.
        .build_cartesian_2d(
            (0..(n - 1).max(1)).into_segmented(),
            0.0..(top * 1.15).max(0.01),
        )?;
    let name = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => nodes.get(*i as usize).map_or("", |n| &n.0).to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(nodes.len())
        .x_label_formatter(&name)
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .y_desc("share")
        .draw()?;
    chart
        .draw_series(nodes.iter().enumerate().map(|(i, (_, share, _))| {
            let i = i as i32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *share),
                ],
                BLUE.mix(0.6).filled(),
            );
            bar.set_margin(0, 0, 12, 12);
            bar
        }))?
        .label("observed")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], BLUE.mix(0.6).filled()));
    if nodes.iter().any(|n| n.2.is_some()) {
        chart
            .draw_series(nodes.iter().enumerate().filter_map(|(i, (_, _, e))| {
                let i = i as i32;
                let e = (*e)?;
                Some(PathElement::new(
                    vec![(SegmentValue::Exact(i), e), (SegmentValue::Exact(i + 1), e)],
                    BLACK.stroke_width(3),
                ))
            }))?
            .label("expected")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(3)));
    }
    legend(&mut chart)
}

fn latency<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    field: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Drawn<DB> {
    let (lo, hi) = time_axis(series);
    // A zero latency (a log logged to the millisecond says 0.000) has no
    // place on a log axis: it is drawn at the left edge, "at or below".
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(node, points)| {
            let points = points.iter().map(|&(x, y)| (x.max(lo), y)).collect();
            (node.clone(), points)
        })
        .collect();
    let series = &series[..];
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Latency CDF per node ({field})"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        // Log time: a fast median and a slow tail both stay readable.
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("requests at or below")
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .draw()?;
    lines(&mut chart, series)
}

/// The latency axis: from a little below the smallest latency above zero
/// to a little above the largest (a curve that starts at 0 ms would
/// otherwise stretch the axis three decades down to the 1 µs floor).
fn time_axis(series: &[(String, Vec<(f64, f64)>)]) -> (f64, f64) {
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold((f64::MAX, 0.0f64), |(lo, hi), x| {
            (if x > 0.0 { lo.min(x) } else { lo }, hi.max(x))
        });
    let lo = if lo == f64::MAX { 0.001 } else { lo };
    (lo * 0.9, hi.max(lo) * 1.1)
}

fn over_time<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[(String, Vec<(f64, f64)>)],
    marks: &[(f64, String)],
) -> Drawn<DB> {
    let (end, top) = series
        .iter()
        .flat_map(|(_, points)| points.iter().copied())
        .fold((0.0f64, 0.0f64), |(end, top), (x, y)| {
            (end.max(x), top.max(y))
        });
    let mut chart = ChartBuilder::on(area)
        .caption("Requests per second per node", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end.max(1.0), 0.0..(top * 1.15).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first line")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("requests/s")
        .draw()?;
    marked(&mut chart, marks, top * 1.15)?;
    lines(&mut chart, series)
}

/// A curves chart's axes, marks and curves, on either kind of x axis.
fn finish_curves<
    'a,
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    l: &Lines,
    series: &[(String, Vec<(f64, f64)>)],
    top: f64,
) -> Drawn<DB> {
    let y_format = |v: &f64| match l.percent_y {
        true => format!("{:.0}%", v * 100.0),
        false => format!("{v}"),
    };
    chart
        .configure_mesh()
        .x_desc(l.x.as_str())
        .y_desc(l.y.as_str())
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&y_format)
        .draw()?;
    marked(&mut chart, &l.marks, top)?;
    lines(&mut chart, series)
}

/// Vertical lines at each mark, labelled at the top.
fn marked<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    marks: &[(f64, String)],
    top: f64,
) -> Drawn<DB> {
    let grey = RGBColor(120, 120, 120);
    for (i, (x, label)) in marks.iter().enumerate() {
        // Neighbouring marks' labels on alternate lines, not on each other.
        let y = top * if i % 2 == 0 { 0.97 } else { 0.91 };
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*x, 0.0), (*x, top)],
            grey.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*x, y),
            ("sans-serif", 13).into_font().color(&grey),
        )))?;
    }
    Ok(())
}

fn histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    field: &str,
    bins: &[(f64, f64, u64)],
) -> Drawn<DB> {
    let lo = bins.first().map_or(0.001, |b| b.0);
    let hi = bins.last().map_or(1.0, |b| b.1).max(lo * 1.01);
    let top = bins.iter().map(|b| b.2).max().unwrap_or(0) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Latency distribution ({field})"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..(top * 1.1).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("requests")
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(
        bins.iter()
            .map(|&(a, b, n)| Rectangle::new([(a, 0.0), (b, n as f64)], BLUE.mix(0.6).filled())),
    )?;
    Ok(())
}

fn curves<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &Lines) -> Drawn<DB> {
    let xs = || l.series.iter().flat_map(|(_, p)| p.iter().map(|p| p.0));
    let ys = l.series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1));
    let top = if l.percent_y {
        1.0
    } else {
        (ys.fold(0.0f64, f64::max) * 1.15).max(1.0)
    };
    let caption = (l.title.as_str(), ("sans-serif", 22));
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption.0, caption.1)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64);
    if l.log_x {
        let (lo, hi) = time_axis(&l.series);
        let series: Vec<(String, Vec<(f64, f64)>)> = (l.series.iter())
            .map(|(n, p)| (n.clone(), p.iter().map(|&(x, y)| (x.max(lo), y)).collect()))
            .collect();
        let chart = builder.build_cartesian_2d((lo..hi).log_scale(), 0.0..top)?;
        finish_curves(chart, l, &series, top)
    } else {
        let lo = xs()
            .fold(f64::MAX, f64::min)
            .min(l.marks.iter().map(|m| m.0).fold(f64::MAX, f64::min));
        let hi = xs()
            .fold(0.0f64, f64::max)
            .max(l.marks.iter().map(|m| m.0).fold(0.0, f64::max));
        let lo = if lo == f64::MAX { 0.0 } else { lo };
        let pad = ((hi - lo) * 0.05).max(0.5);
        let chart = builder.build_cartesian_2d((lo - pad).max(0.0)..hi + pad, 0.0..top)?;
        finish_curves(chart, l, &l.series, top)
    }
}

fn lines<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    series: &[(String, Vec<(f64, f64)>)],
) -> Drawn<DB> {
    for (i, (node, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i);
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(node.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    legend(chart)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Drawn<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests;
