//! The page shell: the stylesheet, the `<head>`, and the small pieces every
//! page shares. Pages are built with maud's `html!`, which escapes every
//! spliced value; the one text inserted as it is is the constant stylesheet.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::verdict::MetricOutcome;

/// The page's style: calm colours, readable type, one column below 720 px.
const STYLE: &str = r#"
:root{--ink:#1f2328;--muted:#59636e;--line:#d8dee4;--paper:#fff;--wash:#f6f8fa;
--red:#c62828;--red-wash:#fdecea;--green:#2e7d32;--green-wash:#e8f5e9;--amber:#b26a00;--amber-wash:#fff4e0;
--canary:#d35400;--baseline:#2f6fb5}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--wash)}
main{max-width:1100px;margin:0 auto;padding:16px}
a{color:var(--baseline)}
h1,h2,h3{line-height:1.2;margin:0}
.band{border-radius:10px;padding:20px 24px;margin-bottom:16px;border-left:10px solid}
.band.rollback{background:var(--red-wash);border-color:var(--red)}
.band.promote{background:var(--green-wash);border-color:var(--green)}
.band.inconclusive{background:var(--amber-wash);border-color:var(--amber)}
.verdict-word{font-size:clamp(40px,9vw,64px);font-weight:800;letter-spacing:.02em;text-transform:uppercase}
.rollback .verdict-word{color:var(--red)}.promote .verdict-word{color:var(--green)}.inconclusive .verdict-word{color:var(--amber)}
.reason{font-size:19px;margin:8px 0 12px;max-width:70ch;overflow-wrap:anywhere}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0;font-size:14px}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
.card{background:var(--paper);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin-bottom:16px}
table{border-collapse:collapse;width:100%;font-size:15px}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:13px;color:var(--muted);font-weight:600}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
tr.failing td{background:var(--red-wash)}
tr.shadow td{color:var(--muted);background:var(--wash)}tr.shadow td a,tr.shadow td strong{color:var(--muted)}
td strong.fail{color:var(--red)}
td.why{font-size:14px;color:var(--muted)}
h1{margin:4px 0 12px}
.scroll{overflow-x:auto}
.badge{display:inline-block;padding:1px 9px;border-radius:99px;font-size:13px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;white-space:nowrap}
.badge.fail,.badge.rollback{background:var(--red);color:#fff}
.badge.pass,.badge.promote{background:var(--green);color:#fff}
.badge.inconclusive{background:var(--amber);color:#fff}
.badge.nodata,.badge.error{background:var(--muted);color:#fff}
.badge.shadow{background:transparent;box-shadow:inset 0 0 0 1.5px currentColor}
.badge.shadow.fail{color:var(--red)}.badge.shadow.pass{color:var(--green)}.badge.shadow.inconclusive{color:var(--amber)}.badge.shadow.nodata,.badge.shadow.error{color:var(--muted)}
.metric-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 14px;margin-bottom:6px}
.metric-head h2{font-size:22px}
.tag{font-size:13px;color:var(--muted)}
.headline{font-size:30px;font-weight:800;font-variant-numeric:tabular-nums}
.headline.fail{color:var(--red)}.headline.pass{color:var(--green)}
.headline small{font-size:16px;font-weight:400;color:var(--muted)}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:12px 0}
.side{border-radius:8px;padding:10px 14px;background:var(--wash);border-top:4px solid}
.side.canary{border-color:var(--canary)}.side.baseline{border-color:var(--baseline)}
.side h3{font-size:14px;color:var(--muted);font-weight:600}
.side .value{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}
.side .detail{font-size:14px;color:var(--muted)}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin-top:8px}
figure{margin:0}figcaption{font-size:14px;color:var(--muted);margin-bottom:2px}
.legend{display:inline-flex;gap:12px;flex-wrap:wrap}
.key{display:inline-block;width:14px;height:4px;border-radius:2px;vertical-align:middle;margin-right:4px}
.key.canary{background:var(--canary)}.key.baseline{background:var(--baseline)}.key.harm{background:var(--red)}.key.safety{background:var(--green)}
.key.boundary{background:repeating-linear-gradient(90deg,var(--muted) 0 4px,transparent 4px 7px)}
svg.chart{width:100%;height:auto;display:block;overflow:visible}
svg .grid{stroke:#eaeef2;stroke-width:1}svg .axis{stroke:#8c959f;stroke-width:1}
svg text{font:12px system-ui,sans-serif;fill:var(--muted)}
svg .tick{font-size:12px}
svg path{fill:none;stroke-width:2.5;stroke-linejoin:round;stroke-linecap:round}
svg path.canary{stroke:var(--canary)}svg path.baseline{stroke:var(--baseline)}
svg path.step{stroke-width:1;opacity:.35}
svg path.harm{stroke:var(--red)}svg path.safety{stroke:var(--green)}
svg .boundary{stroke:var(--muted);stroke-width:1.5;stroke-dasharray:6 4}
svg .level-label{font-size:12px}
svg .mark{stroke:var(--ink);stroke-width:1.5;stroke-dasharray:3 3}
svg .mark-label{fill:var(--ink);font-weight:600}
svg .band{fill:var(--green-wash);stroke:var(--green);stroke-width:1}
svg .interval{stroke-width:4}svg .interval-end{stroke-width:2}
svg .fail{stroke:var(--red);fill:var(--red)}svg .pass{stroke:var(--green);fill:var(--green)}
svg .other{stroke:var(--amber);fill:var(--amber)}
svg .estimate-label{fill:var(--ink);font-weight:700;font-size:13px}
details{margin-top:12px}summary{cursor:pointer;color:var(--muted);font-size:14px}
pre{background:var(--wash);border:1px solid var(--line);border-radius:6px;padding:8px 10px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px;margin:4px 0 8px;user-select:all}
.query-label{font-size:13px;color:var(--muted)}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:13px;color:var(--muted)}
input,select,button{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:var(--paper);color:var(--ink)}
button{background:var(--ink);color:#fff;border-color:var(--ink);cursor:pointer}
.muted{color:var(--muted)}
nav{font-size:14px;margin-bottom:10px}
figure.strip{max-width:560px;margin-bottom:8px}
figure.distribution{grid-column:1/-1;display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;align-items:start}
.note{font-size:13px;color:var(--muted);margin:4px 0 0;max-width:70ch}
table.percentiles caption{text-align:left;font-size:13px;color:var(--muted);padding-bottom:4px}
table.percentiles th[scope=row]{font-size:15px;color:var(--ink)}
table.percentiles small.interval{display:block;font-size:12px;color:var(--muted);white-space:normal}
.key.worse{height:10px;background:rgba(198,40,40,.2)}
.key.pct{width:9px;height:9px;border-radius:50%;background:var(--ink)}
svg path.cdf{stroke-width:2.5}svg path.beyond{stroke-width:1.5;stroke-dasharray:4 4}
svg path.worse{fill:var(--red);fill-opacity:.2;stroke:none}
svg .guide{stroke:#afb8c1;stroke-width:1;stroke-dasharray:2 3}
svg circle.pct{stroke:#fff;stroke-width:1.5}svg circle.canary{fill:var(--canary)}svg circle.baseline{fill:var(--baseline)}
.key.tolerated{height:10px;background:var(--green-wash);border:1px solid var(--green)}
@media (max-width:720px){.wide{display:none}table.history thead{display:none}
table.history tr{display:block;padding:8px 0;border-bottom:1px solid var(--line)}
table.history td{display:inline-block;border:0;padding:2px 8px 2px 0}
table.history td.why{display:block}
svg text,svg .tick,svg .level-label{font-size:17px}svg .estimate-label{font-size:18px}
main{padding:10px}.charts,figure.distribution{grid-template-columns:1fr}.band{padding:14px 16px}
.reason{font-size:17px}.card{padding:12px 14px}.headline{font-size:24px}.side .value{font-size:21px}
th,td{padding:6px}}
"#;

/// A whole page: `title` and `body` inside the shared `<head>` and `<main>`.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No favicon request: the pages load nothing but themselves.
                link rel="icon" href="data:,";
                title { (title) }
                // The stylesheet is a constant of this file, not user text; escaping
                // it would break its quoted font names.
                style { (PreEscaped(STYLE)) }
            }
            body {
                main { (body) }
            }
        }
    }
    .into_string()
}

/// The link back to the history that opens every page but the history.
pub fn back_to_history() -> Markup {
    html! {
        nav { a href="/" { "\u{2190} All verdicts" } }
    }
}

/// The CSS class and the word shown for a metric's outcome.
pub fn metric_outcome(outcome: MetricOutcome) -> (&'static str, &'static str) {
    let class = match outcome {
        MetricOutcome::Pass => "pass",
        MetricOutcome::Fail => "fail",
        MetricOutcome::Inconclusive => "inconclusive",
        MetricOutcome::Nodata => "nodata",
        MetricOutcome::Error => "error",
    };
    (class, outcome.word())
}

/// A coloured badge with `word` in it, styled by `class`.
pub fn badge(class: &str, word: &str) -> Markup {
    html! {
        span.badge.(class) { (word) }
    }
}
