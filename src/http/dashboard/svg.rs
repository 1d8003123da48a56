//! Bar charts drawn on the server as inline SVG: no script, no fonts to
//! fetch, and they scale to any screen (a `viewBox`, width 100%).

use std::fmt::Write;

/// Escapes text for SVG (XML) content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar per `(label, value)`, labels under every `label_every`th bar;
/// `title` names the chart for screen readers.
pub(crate) fn bars(title: &str, values: &[(String, u64)], label_every: usize) -> String {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 200.0;
    const TOP: f64 = 18.0;
    const BOTTOM: f64 = 22.0;
    const LEFT: f64 = 4.0;
    let max = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let count = values.len().max(1) as f64;
    let slot = (WIDTH - LEFT) / count;
    let bar = (slot * 0.8).max(1.0);
    let plot = HEIGHT - TOP - BOTTOM;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{y}" x2="{WIDTH}" y2="{y}" class="axis"/><text x="{LEFT}" y="12" class="tick">max {max}</text>"#,
        y = HEIGHT - BOTTOM
    );
    for (i, (label, value)) in values.iter().enumerate() {
        let h = (*value as f64 / max as f64) * plot;
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let y = HEIGHT - BOTTOM - h;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" class="bar"><title>{}: {value}</title></rect>"#,
            escape(label)
        );
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                HEIGHT - 6.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_per_value_and_escapes_labels() {
        let svg = bars(
            "a <chart>",
            &[("a&b".to_owned(), 3), ("c".to_owned(), 0)],
            1,
        );
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("a&amp;b: 3"));
        assert!(!svg.contains("<chart>"));
    }
}
