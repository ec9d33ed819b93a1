//! Geometry for the workspace's two drawings: the workflow graph ("Show Workflow") and the
//! savings-by-month bar chart. Only numbers are computed here; the templates draw them, with
//! every label escaped, so no markup is assembled from strings.

use reclaim_workflow::WorkflowGraph;
use serde::Serialize;
use std::collections::BTreeMap;

/// A state's box.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: &'static str,
    pub label: &'static str,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// Centre of the label.
    pub tx: f64,
    pub ty: f64,
    pub current: bool,
    pub visited: bool,
}

/// One arrow between two different states (edges sharing both ends are drawn once).
#[derive(Clone, Debug, Serialize)]
pub struct Arrow {
    pub from: &'static str,
    pub to: &'static str,
    /// SVG path data.
    pub d: String,
    /// The edge labels it stands for, e.g. "User: No, remove; No answer by the deadline".
    pub label: String,
    pub taken: bool,
}

/// The workflow drawing.
#[derive(Clone, Debug, Serialize)]
pub struct GraphDrawing {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub arrows: Vec<Arrow>,
}

const BOX_W: f64 = 156.0;
const BOX_H: f64 = 46.0;
const COL: f64 = 204.0;
const ROW: f64 = 150.0;
const LEFT: f64 = 16.0;
const TOP: f64 = 74.0;

/// Where each state sits: the happy path left to right on top, removal below.
fn cell(id: &str) -> (f64, f64) {
    match id {
        "ready" => (0.0, 0.0),
        "awaiting-user" => (1.0, 0.0),
        "awaiting-approval" => (2.0, 0.0),
        "closed-skipped" => (3.0, 0.0),
        "attention-required" => (0.0, 1.0),
        "awaiting-revocation" => (1.0, 1.0),
        "closed-complete" => (2.0, 1.0),
        _ => (3.0, 1.0), // closed-canceled
    }
}

fn centre(id: &str) -> (f64, f64) {
    let (c, r) = cell(id);
    (LEFT + c * COL + BOX_W / 2.0, TOP + r * ROW + BOX_H / 2.0)
}

/// The point where a ray from a box's centre towards `(tx, ty)` leaves the box.
fn exit(c: (f64, f64), toward: (f64, f64)) -> (f64, f64) {
    let (dx, dy) = (toward.0 - c.0, toward.1 - c.1);
    let sx = if dx.abs() > f64::EPSILON {
        (BOX_W / 2.0) / dx.abs()
    } else {
        f64::INFINITY
    };
    let sy = if dy.abs() > f64::EPSILON {
        (BOX_H / 2.0) / dy.abs()
    } else {
        f64::INFINITY
    };
    let t = sx.min(sy).min(1.0);
    (c.0 + dx * t, c.1 + dy * t)
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Lays out the graph the core computed: boxes on a grid, arrows straight between
/// neighbours and curved around the boxes otherwise; pairs with arrows both ways are pulled
/// apart so both stay visible.
pub fn workflow_drawing(g: &WorkflowGraph) -> GraphDrawing {
    let nodes = g
        .states
        .iter()
        .map(|s| {
            let (c, r) = cell(s.id);
            let (x, y) = (LEFT + c * COL, TOP + r * ROW);
            Node {
                id: s.id,
                label: s.label,
                x,
                y,
                w: BOX_W,
                h: BOX_H,
                tx: x + BOX_W / 2.0,
                ty: y + BOX_H / 2.0 + 5.0,
                current: s.current,
                visited: s.visited,
            }
        })
        .collect();
    // One arrow per (from, to), in the order the core lists the edges.
    let mut merged: Vec<(&'static str, &'static str, Vec<&'static str>, bool)> = Vec::new();
    for e in g.edges.iter().filter(|e| e.from != e.to) {
        match merged.iter_mut().find(|m| m.0 == e.from && m.1 == e.to) {
            Some(m) => {
                if !m.2.contains(&e.label) {
                    m.2.push(e.label);
                }
                m.3 |= e.taken;
            }
            None => merged.push((e.from, e.to, vec![e.label], e.taken)),
        }
    }
    let two_way = |a: &str, b: &str| merged.iter().any(|m| m.0 == b && m.1 == a);
    let arrows = merged
        .iter()
        .map(|(from, to, labels, taken)| {
            let (a, b) = (centre(from), centre(to));
            let (ca, cb) = (cell(from), cell(to));
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (nx, ny) = (-dy / len, dx / len);
            let far = (cb.0 - ca.0).abs() > 1.0;
            let d = if far {
                // Bow away from the boxes between: up on the top row, down otherwise.
                let bend = 0.22 * len;
                let sign = if ca.1 == 0.0 && cb.1 == 0.0 {
                    if ny < 0.0 {
                        1.0
                    } else {
                        -1.0
                    }
                } else if ny > 0.0 {
                    1.0
                } else {
                    -1.0
                };
                let ctrl = (
                    (a.0 + b.0) / 2.0 + sign * nx * bend,
                    (a.1 + b.1) / 2.0 + sign * ny * bend,
                );
                let (s, e) = (exit(a, ctrl), exit(b, ctrl));
                format!(
                    "M{} {} Q{} {} {} {}",
                    r1(s.0),
                    r1(s.1),
                    r1(ctrl.0),
                    r1(ctrl.1),
                    r1(e.0),
                    r1(e.1)
                )
            } else {
                let shift = if two_way(from, to) { 7.0 } else { 0.0 };
                let (a2, b2) = (
                    (a.0 + nx * shift, a.1 + ny * shift),
                    (b.0 + nx * shift, b.1 + ny * shift),
                );
                let (s, e) = (exit(a2, b2), exit(b2, a2));
                format!("M{} {} L{} {}", r1(s.0), r1(s.1), r1(e.0), r1(e.1))
            };
            Arrow {
                from,
                to,
                d,
                label: labels.join("; "),
                taken: *taken,
            }
        })
        .collect();
    GraphDrawing {
        width: LEFT * 2.0 + 3.0 * COL + BOX_W,
        height: TOP * 2.0 + ROW + BOX_H,
        nodes,
        arrows,
    }
}

/// One bar of the savings chart.
#[derive(Clone, Debug, Serialize)]
pub struct Bar {
    pub month: String,
    pub amount: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// Centre of the bar, for its labels.
    pub cx: f64,
}

/// The bar chart drawing.
#[derive(Clone, Debug, Serialize)]
pub struct BarChart {
    pub width: f64,
    pub height: f64,
    /// Y of the baseline.
    pub base: f64,
    pub bars: Vec<Bar>,
}

/// Bars for actual savings by month (the last `max_months` months that have any), scaled to
/// the largest.
pub fn month_bars(by_month: &BTreeMap<String, i64>, max_months: usize) -> BarChart {
    const PLOT_H: f64 = 160.0;
    const TOP_PAD: f64 = 24.0;
    const BAR_W: f64 = 44.0;
    const GAP: f64 = 18.0;
    let months: Vec<(&String, &i64)> = by_month
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .rev()
        .take(max_months)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let top = months.iter().map(|(_, c)| **c).max().unwrap_or(0).max(1) as f64;
    let base = TOP_PAD + PLOT_H;
    let bars = months
        .iter()
        .enumerate()
        .map(|(i, (m, cents))| {
            let h = r1(PLOT_H * (**cents).max(0) as f64 / top);
            let x = GAP + i as f64 * (BAR_W + GAP);
            Bar {
                month: (*m).clone(),
                amount: reclaim_workflow::text::money(**cents, ""),
                x,
                y: r1(base - h),
                w: BAR_W,
                h,
                cx: x + BAR_W / 2.0,
            }
        })
        .collect::<Vec<_>>();
    BarChart {
        width: (GAP + bars.len() as f64 * (BAR_W + GAP)).max(240.0),
        height: base + 28.0,
        base,
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reclaim_workflow::{workflow_graph, State};

    #[test]
    fn every_state_has_its_own_box_and_the_current_one_is_marked() {
        let g = workflow_graph(Some(State::AwaitingApproval), &[]);
        let d = workflow_drawing(&g);
        assert_eq!(d.nodes.len(), 8);
        let mut corners: Vec<(i64, i64)> =
            d.nodes.iter().map(|n| (n.x as i64, n.y as i64)).collect();
        corners.sort_unstable();
        corners.dedup();
        assert_eq!(corners.len(), 8, "two states share a box");
        let current: Vec<_> = d.nodes.iter().filter(|n| n.current).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].id, "awaiting-approval");
        assert!(d.arrows.iter().all(|a| a.from != a.to));
        assert!(d
            .arrows
            .iter()
            .all(|a| a.d.starts_with('M') && !a.d.contains("NaN")));
    }

    #[test]
    fn bars_scale_to_the_largest_month() {
        let m = BTreeMap::from([("2026-01".to_string(), 1000), ("2026-02".to_string(), 500)]);
        let c = month_bars(&m, 12);
        assert_eq!(c.bars.len(), 2);
        assert!((c.bars[0].h - 2.0 * c.bars[1].h).abs() < 0.2);
        assert_eq!(c.bars[1].amount, "5.00");
        assert!(month_bars(&BTreeMap::new(), 12).bars.is_empty());
    }
}
