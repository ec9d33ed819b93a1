//! Geometry for the workspace's two drawings: the workflow graph ("Show Workflow") and the
//! savings-by-month bar chart. Only numbers, and where words break, are computed here; the
//! templates draw them, with every label escaped, so no markup is assembled from strings.
//!
//! The workflow is a layered diagram, so that a person can follow it like a flow chart: the
//! way a right usually goes runs left to right on one row, Attention Required sits above it
//! and the closed states a candidate leaves that way for below, and every move is a line of
//! right angles through the channels between the rows, so no line passes through a box.
//! Moves into (or out of) the same side state share one line, a bus, and the words they have
//! in common are written on it once. The same graph is also given as text
//! ([`workflow_outline`]), for screen readers.

use reclaim_workflow::WorkflowGraph;
use serde::Serialize;
use std::collections::BTreeMap;

type Pt = (f64, f64);

/// An axis-aligned box: a state, or the room a label takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }

    fn bottom(&self) -> f64 {
        self.y + self.h
    }

    fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }

    fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }

    /// True when the two boxes come closer than `pad`.
    fn overlaps(&self, o: &Rect, pad: f64) -> bool {
        self.x < o.right() + pad
            && o.x < self.right() + pad
            && self.y < o.bottom() + pad
            && o.y < self.bottom() + pad
    }

    /// True when the segment `a`-`b` passes through the inside; running along the border or
    /// touching it (an arrow arriving at its box) is not inside.
    pub fn cut_by(&self, a: Pt, b: Pt) -> bool {
        const EPS: f64 = 0.01;
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        for (p, d, min, max) in [
            (a.0, b.0 - a.0, self.x, self.right()),
            (a.1, b.1 - a.1, self.y, self.bottom()),
        ] {
            if d.abs() < 1e-12 {
                if p <= min + EPS || p >= max - EPS {
                    return false;
                }
                continue;
            }
            let (t1, t2) = ((min + EPS - p) / d, (max - EPS - p) / d);
            lo = lo.max(t1.min(t2));
            hi = hi.min(t1.max(t2));
        }
        hi - lo > 1e-9
    }
}

/// One line of words, placed (a `<tspan>`, centred on `x`, `y` its baseline).
#[derive(Clone, Debug, Serialize)]
pub struct TextLine {
    pub text: String,
    pub x: f64,
    pub y: f64,
}

/// A state's box.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub id: &'static str,
    pub label: &'static str,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// The name on one or two lines: narrow boxes leave room between them for the words on
    /// the arrows.
    pub lines: Vec<TextLine>,
    pub current: bool,
    pub visited: bool,
}

impl Node {
    fn rect(&self) -> Rect {
        Rect {
            x: self.x,
            y: self.y,
            w: self.w,
            h: self.h,
        }
    }
}

/// One arrow between two different states (edges sharing both ends are drawn once).
#[derive(Clone, Debug, Serialize)]
pub struct Arrow {
    pub from: &'static str,
    pub to: &'static str,
    /// SVG path data: the corners of `points`.
    pub d: String,
    /// Every edge label it stands for, e.g. "User: No, remove; No answer by the deadline" (the
    /// tooltip; the words drawn are in [`GraphDrawing::labels`]).
    pub label: String,
    pub taken: bool,
    /// Start, corners and end (the tip of the arrowhead).
    #[serde(skip)]
    pub points: Vec<Pt>,
}

/// Words drawn beside a line: one arrow's, or the words a bus's arrows share.
#[derive(Clone, Debug, Serialize)]
pub struct EdgeLabel {
    pub lines: Vec<TextLine>,
    /// The room the words take; kept clear of boxes and of other labels.
    pub rect: Rect,
    /// One of the moves it names was taken, so it is highlighted with them.
    pub taken: bool,
    /// The arrows it names, as `from>to`.
    #[serde(skip)]
    pub arrows: Vec<String>,
    /// Everything it stands for, when the words drawn are shortened.
    pub title: String,
}

/// A dot where an arrow joins a bus, so that joining reads differently from crossing.
#[derive(Clone, Debug, Serialize)]
pub struct Join {
    pub x: f64,
    pub y: f64,
    pub taken: bool,
}

/// The workflow drawing.
#[derive(Clone, Debug, Serialize)]
pub struct GraphDrawing {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<Node>,
    pub arrows: Vec<Arrow>,
    pub labels: Vec<EdgeLabel>,
    pub joins: Vec<Join>,
}

/// Advance widths of DejaVu Sans for ' '..='~' (1/2048 em): the sans-serif that Debian's
/// Chromium falls back to, and wider than the usual system fonts, so words measured with it
/// fit in every browser.
const ADVANCE: [u16; 95] = [
    651, 821, 942, 1716, 1303, 1946, 1597, 563, 799, 799, 1024, 1716, 651, 739, 651, 690, 1303,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690, 690, 1716, 1716, 1716, 1087, 2048,
    1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604, 604, 1343, 1141, 1767, 1532, 1612, 1235,
    1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799, 690, 799, 1716, 1024, 1024,
    1255, 1300, 1126, 1300, 1260, 721, 1300, 1298, 569, 569, 1186, 569, 1995, 1298, 1253, 1300,
    1300, 842, 1067, 803, 1298, 1212, 1675, 1212, 1212, 1075, 1303, 690, 1303, 1716,
];

/// The width of `s` at `size` px (bold is about an eighth wider).
fn text_width(s: &str, size: f64, bold: bool) -> f64 {
    let units: f64 = s
        .chars()
        .map(|c| {
            (c as usize)
                .checked_sub(32)
                .and_then(|i| ADVANCE.get(i))
                .map_or(2048.0, |w| f64::from(*w))
        })
        .sum();
    units / 2048.0 * size * if bold { 1.14 } else { 1.0 }
}

/// `text` on one, two and three lines (each split where the longest line is shortest).
fn wraps(text: &str, size: f64) -> Vec<Vec<String>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = words.len();
    let line = |a: usize, b: usize| words[a..b].join(" ");
    let width = |a: usize, b: usize| text_width(&line(a, b), size, false);
    let mut out = vec![vec![line(0, n)]];
    // Two labels joined by " / " break between them.
    if let Some((a, b)) = text.split_once(" / ").filter(|(_, b)| !b.contains(" / ")) {
        out.push(vec![format!("{a} /"), b.to_string()]);
        return out;
    }
    let best2 = (1..n).min_by(|&i, &j| {
        let wi = width(0, i).max(width(i, n));
        let wj = width(0, j).max(width(j, n));
        wi.total_cmp(&wj)
    });
    if let Some(i) = best2 {
        out.push(vec![line(0, i), line(i, n)]);
    }
    let best3 = (1..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .min_by(|&(i, j), &(k, l)| {
            let a = width(0, i).max(width(i, j)).max(width(j, n));
            let b = width(0, k).max(width(k, l)).max(width(l, n));
            a.total_cmp(&b)
        });
    if let Some((i, j)) = best3 {
        out.push(vec![line(0, i), line(i, j), line(j, n)]);
    }
    out
}

const BOX_W: f64 = 112.0;
const BOX_H: f64 = 46.0;
/// Room between two boxes of a row: the words of the arrow between them fit on one line.
const GAP: f64 = 138.0;
const MARGIN: f64 = 6.0;
const NODE_FONT: f64 = 13.0;
const NODE_LINE: f64 = 15.0;
/// The page's small text.
const FONT: f64 = 12.0;
const LINE: f64 = 14.0;
/// Between two buses in a channel: a line of words fits between them.
const TRACK: f64 = 22.0;
/// Between the main row and the first bus below or above it: two lines of words fit, for the
/// words of the arrows leaving or reaching each box.
const BAND_MAIN: f64 = 40.0;
/// Between a side box and the bus nearest to it.
const BAND_SIDE: f64 = 16.0;
/// Above the top bus of the drawing: room for its words.
const BAND_EDGE: f64 = 20.0;
const PORT_GAP: f64 = 16.0;
/// Arrows leave and reach a box this far from its corners at least.
const PORT_INSET: f64 = 14.0;

/// The rows, top to bottom.
const ABOVE: usize = 0;
const MAIN: usize = 1;
const BELOW: usize = 2;
/// Channels lie above each row and below the last: channel `c` is above row `c`.
const CHANNELS: usize = 4;

/// Where a state sits, as (row, column). The main row is the way a right usually goes, left
/// to right. Attention Required sits above it, over the middle of the states it is reached
/// from and resumes to; the closed states a candidate leaves that way for sit below, Closed
/// Skipped first so that the line from Attention Required reaches it around the left edge
/// without crossing a bus. States the core may add later go to the end of the row below.
fn place(id: &str) -> Option<(usize, f64)> {
    Some(match id {
        "ready" => (MAIN, 0.0),
        "awaiting-user" => (MAIN, 1.0),
        "awaiting-approval" => (MAIN, 2.0),
        "awaiting-revocation" => (MAIN, 3.0),
        "closed-complete" => (MAIN, 4.0),
        "attention-required" => (ABOVE, 1.5),
        "closed-skipped" => (BELOW, 1.0),
        "closed-canceled" => (BELOW, 2.0),
        _ => return None,
    })
}

/// The moves between two states, merged: (from, to) node indices and the edge labels.
#[derive(Clone, Debug)]
struct Move {
    from: usize,
    to: usize,
    labels: Vec<&'static str>,
    taken: bool,
}

/// A line through a channel: a bus (arrows sharing the end at `shared`) or an arrow between
/// two boxes of one row that are not neighbours.
#[derive(Clone, Debug)]
struct Route {
    channel: usize,
    members: Vec<usize>,
    /// The node every member shares, and whether it is where they go (else where they leave).
    shared: Option<(usize, bool)>,
    level: usize,
    /// An arrow along the main row, which may pass above it or below it.
    either_side: bool,
}

/// Where a line meets a box's side: one per member, and one per bus at its shared node.
#[derive(Clone, Copy, Debug)]
struct Att {
    node: usize,
    route: usize,
    member: Option<usize>,
    /// The x the line heads for (the other end's centre).
    toward: f64,
}

#[derive(Clone, Copy, Debug)]
enum Way {
    /// Neighbours on a row: a straight arrow, shifted by the offset when there is one back.
    Straight(f64),
    Route(usize),
    /// From the row above to the row below, between the first boxes of both: around the
    /// left edge, at this x.
    Lane(f64),
}

/// How well a channel reads, best first: fewest crossings, then the arrows along the main row
/// nearest it, then the shortest lines (to half a unit).
#[derive(Clone, Copy, Debug, Default)]
struct Score(usize, usize, f64);

impl Score {
    fn key(&self) -> (usize, i64) {
        (self.0 + self.1, (self.2 * 2.0).round() as i64)
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::ops::Add for Score {
    type Output = Score;
    fn add(self, o: Score) -> Score {
        Score(self.0 + o.0, self.1 + o.1, self.2 + o.2)
    }
}

/// The arrows' words, shortest last: both labels of two, else the first and how many more.
fn wordings(labels: &[&str]) -> Vec<String> {
    match labels {
        [] => Vec::new(),
        [one] => vec![one.to_string()],
        [first, second] => vec![format!("{first} / {second}"), format!("{first} (+1 more)")],
        [first, rest @ ..] => vec![format!("{first} (+{} more)", rest.len())],
    }
}

/// For a bus: the words all its arrows share (written once, on the bus) and what each adds.
/// Labels of one arrow each that start alike ("Resume: retry removal", "Resume") share their
/// head.
fn shared_words(labels: &[Vec<&'static str>]) -> (Vec<&'static str>, Vec<Vec<&'static str>>) {
    if labels.len() < 2 {
        return (Vec::new(), labels.to_vec());
    }
    let common: Vec<&'static str> = labels[0]
        .iter()
        .copied()
        .filter(|l| labels.iter().all(|m| m.contains(l)))
        .collect();
    if !common.is_empty() {
        let rest = labels
            .iter()
            .map(|m| m.iter().copied().filter(|l| !common.contains(l)).collect())
            .collect();
        return (common, rest);
    }
    let head = |l: &'static str| l.split_once(": ").map_or(l, |(h, _)| h);
    let single: Option<Vec<&'static str>> = labels
        .iter()
        .map(|m| match m.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
        .collect();
    if let Some(single) = single {
        let h = head(single[0]);
        if single.iter().all(|l| head(l) == h) {
            let rest = single
                .iter()
                .map(|l| l.split_once(": ").map(|(_, t)| t).into_iter().collect())
                .collect();
            return (vec![h], rest);
        }
    }
    (Vec::new(), labels.to_vec())
}

/// Lays out the graph the core computed: boxes on three rows, arrows of right angles routed
/// through the channels between them (the buses of a channel stacked, and each arrow along
/// the main row put above or below it, so that the fewest lines cross), and the words of
/// every arrow placed where they touch no box and no other words. Only rows and columns are
/// chosen per state; a state the core adds later is still drawn, at the end of the row below.
pub fn workflow_drawing(g: &WorkflowGraph) -> GraphDrawing {
    let base = Layout::new(g);
    let either: Vec<usize> = (0..base.routes.len())
        .filter(|&r| base.routes[r].either_side)
        .take(6)
        .collect();
    // Bit `b` of `mask` puts the arrow `either[b]` below the main row.
    let try_sides = |mask: usize| {
        let mut l = base.clone();
        for (bit, &r) in either.iter().enumerate() {
            l.routes[r].channel = if mask & (1 << bit) == 0 {
                MAIN
            } else {
                MAIN + 1
            };
        }
        l.arrange();
        let score = (0..CHANNELS).fold(Score::default(), |s, c| s + l.order_channel(c));
        (score, l)
    };
    let mut best = try_sides(0);
    for mask in 1..(1usize << either.len()) {
        let tried = try_sides(mask);
        if tried.0 < best.0 {
            best = tried;
        }
    }
    best.1.finish()
}

#[derive(Clone, Debug)]
struct Layout<'g> {
    g: &'g WorkflowGraph,
    rows: Vec<usize>,
    nodes: Vec<Node>,
    moves: Vec<Move>,
    ways: Vec<Way>,
    routes: Vec<Route>,
    /// Per move: the x of its lane on the left, when it goes from the row above to the row
    /// below (around the main row).
    lanes: Vec<Option<f64>>,
    atts: Vec<Att>,
    /// Per attachment: its x on the box's side.
    ports: Vec<f64>,
    /// The y where each channel starts.
    channel_top: [f64; CHANNELS],
    /// The room next to the upper and the lower side of each channel.
    pads: [(f64, f64); CHANNELS],
    width: f64,
    height: f64,
}

const LANE_GAP: f64 = 10.0;

impl<'g> Layout<'g> {
    /// The boxes' columns and how each move is drawn; rows' heights come in [`Self::arrange`].
    fn new(g: &'g WorkflowGraph) -> Self {
        let mut cells: Vec<(usize, f64)> = Vec::new();
        for s in &g.states {
            let cell = place(s.id).unwrap_or_else(|| {
                let last = g
                    .states
                    .iter()
                    .filter_map(|o| place(o.id))
                    .chain(cells.iter().copied())
                    .filter(|c| c.0 == BELOW)
                    .map(|c| c.1)
                    .fold(-1.0, f64::max);
                (BELOW, last + 1.0)
            });
            cells.push(cell);
        }
        let rows: Vec<usize> = cells.iter().map(|c| c.0).collect();
        let moves = merge_moves(g);
        let mut lanes: Vec<Option<f64>> = vec![None; moves.len()];
        let mut next_lane = MARGIN;
        let first_in_row = |k: usize| {
            (0..cells.len()).all(|o| cells[o].0 != cells[k].0 || cells[o].1 >= cells[k].1)
        };
        for (i, m) in moves.iter().enumerate() {
            if rows[m.from].abs_diff(rows[m.to]) > 1 {
                lanes[i] = Some(next_lane);
                next_lane += LANE_GAP;
            }
        }
        let left = next_lane + if next_lane > MARGIN { LANE_GAP } else { 0.0 };
        let nodes: Vec<Node> = g
            .states
            .iter()
            .zip(&cells)
            .map(|(s, (_, col))| Node {
                id: s.id,
                label: s.label,
                x: r1(left + col * (BOX_W + GAP)),
                y: 0.0,
                w: BOX_W,
                h: BOX_H,
                lines: Vec::new(),
                current: s.current,
                visited: s.visited,
            })
            .collect();

        let mut routes: Vec<Route> = Vec::new();
        let mut ways: Vec<Way> = Vec::new();
        for (i, m) in moves.iter().enumerate() {
            let (ra, rb) = (rows[m.from], rows[m.to]);
            let way = if let Some(x) =
                lanes[i].filter(|_| first_in_row(m.from) && first_in_row(m.to))
            {
                lanes[i] = None;
                Way::Lane(x)
            } else if ra == rb {
                let (xa, xb) = (nodes[m.from].x, nodes[m.to].x);
                let between = (0..nodes.len()).any(|k| {
                    rows[k] == ra && nodes[k].x > xa.min(xb) + 1.0 && nodes[k].x < xa.max(xb) - 1.0
                });
                if between {
                    routes.push(Route {
                        // Side rows: on the side away from the main row.
                        channel: if ra == BELOW { ra + 1 } else { ra },
                        members: vec![i],
                        shared: None,
                        level: 0,
                        either_side: ra == MAIN,
                    });
                    Way::Route(routes.len() - 1)
                } else {
                    let back = moves.iter().any(|o| o.from == m.to && o.to == m.from);
                    Way::Straight(match (back, xb > xa) {
                        (false, _) => 0.0,
                        (true, true) => -6.0,
                        (true, false) => 6.0,
                    })
                }
            } else {
                // Between rows: one bus per side state and direction, in the channel between
                // that state and the main row.
                let key = if rb != MAIN && (ra == MAIN || rb == BELOW) {
                    (m.to, true)
                } else {
                    (m.from, false)
                };
                let side_row = rows[key.0];
                let channel = if side_row == ABOVE { MAIN } else { side_row };
                match routes.iter().position(|r| r.shared == Some(key)) {
                    Some(r) => {
                        routes[r].members.push(i);
                        Way::Route(r)
                    }
                    None => {
                        routes.push(Route {
                            channel,
                            members: vec![i],
                            shared: Some(key),
                            level: 0,
                            either_side: false,
                        });
                        Way::Route(routes.len() - 1)
                    }
                }
            };
            ways.push(way);
        }
        let width = nodes.iter().map(|n| n.x + n.w).fold(0.0, f64::max) + MARGIN;
        Layout {
            g,
            rows,
            nodes,
            moves,
            ways,
            routes,
            lanes,
            atts: Vec::new(),
            ports: Vec::new(),
            channel_top: [0.0; CHANNELS],
            pads: [(0.0, 0.0); CHANNELS],
            width,
            height: 0.0,
        }
    }

    /// Heights of the rows and channels for the routes' channels, and where each route meets
    /// a box.
    fn arrange(&mut self) {
        let filled = |r: usize| self.rows.contains(&r);
        let near = |r: Option<usize>| match r {
            Some(r) if filled(r) && r == MAIN => BAND_MAIN,
            Some(r) if filled(r) => BAND_SIDE,
            _ => BAND_EDGE,
        };
        let mut y = 0.0;
        let mut row_y = [0.0; CHANNELS];
        for c in 0..CHANNELS {
            let above = c.checked_sub(1);
            let below = (c < CHANNELS - 1).then_some(c);
            self.pads[c] = (near(above), near(below));
            let n = self.routes.iter().filter(|r| r.channel == c).count();
            let h = match n {
                0 if above.is_some_and(filled) && below.is_some_and(filled) => {
                    BAND_MAIN + BAND_SIDE
                }
                0 => MARGIN,
                n => self.pads[c].0 + (n - 1) as f64 * TRACK + self.pads[c].1,
            };
            self.channel_top[c] = y;
            y += h;
            if let Some(r) = below {
                row_y[r] = y;
                if filled(r) {
                    y += BOX_H;
                }
            }
        }
        self.height = y;
        for (k, n) in self.nodes.iter_mut().enumerate() {
            n.y = r1(row_y[self.rows[k]]);
            n.lines = name_lines(n);
        }

        let cx = |k: usize| self.nodes[k].x + self.nodes[k].w / 2.0;
        let mut atts: Vec<Att> = Vec::new();
        for (ri, r) in self.routes.iter().enumerate() {
            match r.shared {
                Some((s, into)) => {
                    let others: Vec<(usize, f64, bool)> = r
                        .members
                        .iter()
                        .map(|&m| {
                            let k = if into {
                                self.moves[m].from
                            } else {
                                self.moves[m].to
                            };
                            match self.lanes[m] {
                                Some(x) => (k, x, false),
                                None => (k, cx(k), true),
                            }
                        })
                        .collect();
                    let mean = others.iter().map(|o| o.1).sum::<f64>() / others.len() as f64;
                    atts.push(Att {
                        node: s,
                        route: ri,
                        member: None,
                        toward: mean,
                    });
                    for (&m, &(k, _, attached)) in r.members.iter().zip(&others) {
                        if attached {
                            atts.push(Att {
                                node: k,
                                route: ri,
                                member: Some(m),
                                toward: cx(s),
                            });
                        }
                    }
                }
                None => {
                    for &m in &r.members {
                        let (a, b) = (self.moves[m].from, self.moves[m].to);
                        for (k, other) in [(a, b), (b, a)] {
                            atts.push(Att {
                                node: k,
                                route: ri,
                                member: Some(m),
                                toward: cx(other),
                            });
                        }
                    }
                }
            }
        }
        self.ports = atts.iter().map(|a| cx(a.node)).collect();
        self.atts = atts;
    }

    fn level_y(&self, c: usize, level: usize) -> f64 {
        self.channel_top[c] + self.pads[c].0 + level as f64 * TRACK
    }

    /// The y of the side of box `k` that faces channel `c`.
    fn side_y(&self, k: usize, c: usize) -> f64 {
        let n = &self.nodes[k];
        if c > self.rows[k] {
            n.y + n.h
        } else {
            n.y
        }
    }

    fn levels(&self, c: usize) -> usize {
        self.routes.iter().filter(|r| r.channel == c).count()
    }

    /// The first guess at the order of the attachments on every box side facing channel `c`,
    /// for the routes' current levels: lines heading left leave on the left, the one to the
    /// nearer bus outermost, so that a line to a farther bus does not cross a nearer one from
    /// the same box.
    fn side_orders(&self, c: usize) -> Vec<Vec<usize>> {
        let n_levels = self.levels(c);
        let mut sides = Vec::new();
        for k in 0..self.nodes.len() {
            let mut mine: Vec<usize> = (0..self.atts.len())
                .filter(|&a| self.atts[a].node == k && self.routes[self.atts[a].route].channel == c)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let n = &self.nodes[k];
            let cx = n.x + n.w / 2.0;
            let below = c > self.rows[k];
            let key = |a: usize| {
                let at = &self.atts[a];
                let level = self.routes[at.route].level as f64;
                let depth = if below {
                    level
                } else {
                    (n_levels as f64 - 1.0) - level
                };
                let dx = at.toward - cx;
                if dx < -1.0 {
                    (0, depth, at.toward)
                } else if dx > 1.0 {
                    (2, -depth, at.toward)
                } else {
                    (1, depth, at.toward)
                }
            };
            mine.sort_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0)
                    .then(ka.1.total_cmp(&kb.1))
                    .then(ka.2.total_cmp(&kb.2))
            });
            sides.push(mine);
        }
        sides
    }

    /// Spreads the attachments of each side in `sides` (one box side each, in order), then
    /// moves the end of a line at a side box right above or below its other end under it,
    /// when no other line is there, so that the line is straight.
    fn set_ports(&mut self, c: usize, sides: &[Vec<usize>]) {
        for side in sides {
            let Some(&first) = side.first() else {
                continue;
            };
            let n = &self.nodes[self.atts[first].node];
            let cx = n.x + n.w / 2.0;
            let count = side.len();
            let step = if count > 1 {
                PORT_GAP.min((n.w - 2.0 * PORT_INSET) / (count - 1) as f64)
            } else {
                0.0
            };
            for (i, &a) in side.iter().enumerate() {
                self.ports[a] = cx + (i as f64 - (count - 1) as f64 / 2.0) * step;
            }
        }
        for a in 0..self.atts.len() {
            let at = self.atts[a];
            let route = &self.routes[at.route];
            if route.channel != c || self.rows[at.node] == MAIN {
                continue;
            }
            let partners: Vec<usize> = match at.member {
                None => route.members.clone(),
                Some(m) => vec![m],
            };
            for m in partners {
                let mv = &self.moves[m];
                let other = if mv.from == at.node { mv.to } else { mv.from };
                if (self.nodes[other].x - self.nodes[at.node].x).abs() > 0.5 {
                    continue;
                }
                let Some(o) = (0..self.atts.len()).find(|&b| {
                    let bt = &self.atts[b];
                    bt.route == at.route && bt.node == other && bt.member == Some(m)
                }) else {
                    continue;
                };
                let x = self.ports[o];
                let clear = (0..self.atts.len()).all(|b| {
                    b == a
                        || self.atts[b].node != at.node
                        || self.routes[self.atts[b].route].channel != c
                        || (self.ports[b] - x).abs() >= 8.0
                });
                if clear {
                    self.ports[a] = x;
                }
            }
        }
    }

    /// The attachment of route `r` at box `node` for move `m`.
    fn port(&self, r: usize, node: usize, m: usize) -> f64 {
        self.atts
            .iter()
            .position(|a| {
                a.route == r && a.node == node && (a.member == Some(m) || a.member.is_none())
            })
            .map_or(self.nodes[node].x + self.nodes[node].w / 2.0, |a| {
                self.ports[a]
            })
    }

    /// Start, corners and end of move `m`'s arrow.
    fn points(&self, m: usize) -> Vec<Pt> {
        let mv = &self.moves[m];
        match self.ways[m] {
            Way::Straight(off) => {
                let (a, b) = (&self.nodes[mv.from], &self.nodes[mv.to]);
                let y = a.y + a.h / 2.0 + off;
                if b.x > a.x {
                    vec![(a.x + a.w, y), (b.x, y)]
                } else {
                    vec![(a.x, y), (b.x + b.w, y)]
                }
            }
            Way::Lane(x) => {
                let (a, b) = (&self.nodes[mv.from], &self.nodes[mv.to]);
                let (ya, yb) = (a.y + a.h / 2.0, b.y + b.h / 2.0);
                vec![(a.x, ya), (x, ya), (x, yb), (b.x, yb)]
            }
            Way::Route(r) => {
                let route = &self.routes[r];
                let c = route.channel;
                let yl = self.level_y(c, route.level);
                let end = |k: usize| match self.lanes[m] {
                    // Around the main row: from the box's left side to the lane, along it.
                    Some(lane) if route.shared.map(|s| s.0) != Some(k) => {
                        let n = &self.nodes[k];
                        vec![(n.x, n.y + n.h / 2.0), (lane, n.y + n.h / 2.0), (lane, yl)]
                    }
                    _ => vec![
                        (self.port(r, k, m), self.side_y(k, c)),
                        (self.port(r, k, m), yl),
                    ],
                };
                let mut points = end(mv.from);
                let mut back = end(mv.to);
                back.reverse();
                points.extend(back);
                simplify(points)
            }
        }
    }

    /// How good channel `c` reads: how many lines of different routes cross, how far the
    /// arrows along the main row are from it (in buses), and how long the lines are.
    fn channel_score(&self, c: usize) -> Score {
        let segs: Vec<(usize, Pt, Pt)> = (0..self.routes.len())
            .filter(|&r| self.routes[r].channel == c)
            .flat_map(|r| {
                self.routes[r]
                    .members
                    .iter()
                    .flat_map(|&m| {
                        let p = self.points(m);
                        p.windows(2).map(|w| (r, w[0], w[1])).collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let n_levels = self.levels(c);
        let away: usize = self
            .routes
            .iter()
            .filter(|r| r.channel == c && r.either_side)
            .map(|r| {
                if c == MAIN {
                    n_levels - 1 - r.level
                } else {
                    r.level
                }
            })
            .sum();
        Score(
            crossings(&segs),
            away,
            segs.iter().map(|s| seg_len((s.1, s.2))).sum(),
        )
    }

    /// Stacks the routes of channel `c` and orders the lines along each box side so that the
    /// fewest lines cross (then the shortest lines): every order of the routes when there are
    /// few, with a first guess for the sides; then, for the three best, every order of each
    /// side in turn while that helps. Returns how many cross and the lines' length.
    fn order_channel(&mut self, c: usize) -> Score {
        let mine: Vec<usize> = (0..self.routes.len())
            .filter(|&r| self.routes[r].channel == c)
            .collect();
        if mine.is_empty() {
            return Score::default();
        }
        let mut ranked: Vec<(Score, Vec<usize>, Vec<Vec<usize>>)> = Vec::new();
        for order in orders(mine.len()) {
            for (&r, &level) in mine.iter().zip(&order) {
                self.routes[r].level = level;
            }
            let sides = self.side_orders(c);
            self.set_ports(c, &sides);
            ranked.push((self.channel_score(c), order, sides));
        }
        ranked.sort_by_key(|a| a.0);
        ranked.truncate(3);
        let mut best: Option<(Score, Vec<usize>, Vec<Vec<usize>>)> = None;
        for (mut score, order, mut sides) in ranked {
            for (&r, &level) in mine.iter().zip(&order) {
                self.routes[r].level = level;
            }
            for _pass in 0..4 {
                let mut improved = false;
                for s in 0..sides.len() {
                    if sides[s].len() < 2 || sides[s].len() > 5 {
                        continue;
                    }
                    let original = sides[s].clone();
                    let mut kept = original.clone();
                    for perm in orders(original.len()) {
                        sides[s] = perm.iter().map(|&i| original[i]).collect();
                        self.set_ports(c, &sides);
                        let tried = self.channel_score(c);
                        if tried < score {
                            score = tried;
                            kept = sides[s].clone();
                            improved = true;
                        }
                    }
                    sides[s] = kept;
                }
                if !improved {
                    break;
                }
            }
            if best.as_ref().is_none_or(|b| score < b.0) {
                best = Some((score, order, sides));
            }
        }
        let Some((score, order, sides)) = best else {
            return Score::default();
        };
        for (&r, &level) in mine.iter().zip(&order) {
            self.routes[r].level = level;
        }
        self.set_ports(c, &sides);
        score
    }

    fn finish(self) -> GraphDrawing {
        let mut arrows: Vec<Arrow> = (0..self.moves.len()).map(|m| self.arrow(m)).collect();
        let joins = self.joins(&arrows);
        let labels = self.labels(&arrows);
        // Taken arrows last, so that they are drawn over the others.
        arrows.sort_by_key(|a| a.taken);
        GraphDrawing {
            width: r1(self.width),
            height: r1(self.height),
            nodes: self.nodes,
            arrows,
            labels,
            joins,
        }
    }

    fn arrow(&self, m: usize) -> Arrow {
        let mv = &self.moves[m];
        let points: Vec<Pt> = self
            .points(m)
            .into_iter()
            .map(|(x, y)| (r1(x), r1(y)))
            .collect();
        Arrow {
            from: self.g.states[mv.from].id,
            to: self.g.states[mv.to].id,
            d: path_data(&points),
            label: mv.labels.join("; "),
            taken: mv.taken,
            points,
        }
    }

    /// Where a bus's bar is: its y and its run.
    fn bar(&self, r: usize, arrows: &[Arrow]) -> (f64, f64, f64) {
        let route = &self.routes[r];
        let y = r1(self.level_y(route.channel, route.level));
        let xs = route.members.iter().flat_map(|&m| {
            arrows[m]
                .points
                .iter()
                .filter(move |q| (q.1 - y).abs() < 0.01)
                .map(|q| q.0)
        });
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
        (y, lo, hi)
    }

    /// A dot wherever an arrow's own line joins a bus between the bus's ends.
    fn joins(&self, arrows: &[Arrow]) -> Vec<Join> {
        let mut joins: Vec<Join> = Vec::new();
        for (r, route) in self.routes.iter().enumerate() {
            if route.shared.is_none() || route.members.len() < 2 {
                continue;
            }
            let (y, lo, hi) = self.bar(r, arrows);
            let mut xs: Vec<f64> = route
                .members
                .iter()
                .flat_map(|&m| {
                    arrows[m]
                        .points
                        .iter()
                        .filter(|q| (q.1 - y).abs() < 0.01)
                        .map(|q| q.0)
                })
                .filter(|x| x - lo > 0.5 && hi - x > 0.5)
                .collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup_by(|a, b| (*a - *b).abs() < 0.5);
            for x in xs {
                let taken = route.members.iter().any(|&m| {
                    self.moves[m].taken
                        && arrows[m]
                            .points
                            .windows(2)
                            .any(|w| on_segment(w[0], w[1], (x, y)))
                });
                joins.push(Join { x, y, taken });
            }
        }
        joins
    }

    /// The words of every arrow, placed: between neighbours first, then each arrow's own words
    /// in a bus, then the words a bus shares.
    fn labels(&self, arrows: &[Arrow]) -> Vec<EdgeLabel> {
        let mut jobs: Vec<Job> = Vec::new();
        let segments_of = |m: usize| -> Vec<(Pt, Pt)> {
            arrows[m].points.windows(2).map(|w| (w[0], w[1])).collect()
        };
        for (m, mv) in self.moves.iter().enumerate() {
            if let Way::Straight(_) | Way::Lane(_) = self.ways[m] {
                let segs = segments_of(m);
                // Along the last leg, nearest where the arrow arrives.
                let prefer = segs.last().map_or((0.0, 0.0), |s| mid(s.0, s.1));
                jobs.push(Job {
                    texts: wordings(&mv.labels),
                    anchors: segs,
                    prefer,
                    members: vec![m],
                    rank: 0,
                });
            }
        }
        for (r, route) in self.routes.iter().enumerate() {
            let labels: Vec<Vec<&'static str>> = route
                .members
                .iter()
                .map(|&m| self.moves[m].labels.clone())
                .collect();
            let (common, own) = shared_words(&labels);
            let (y, lo, hi) = self.bar(r, arrows);
            if !common.is_empty() {
                // On the bar, nearest where the bus meets its shared state.
                let at = route
                    .shared
                    .and_then(|(_, into)| {
                        let p = &arrows[*route.members.first()?].points;
                        if into {
                            p.last()
                        } else {
                            p.first()
                        }
                    })
                    .map_or((lo + hi) / 2.0, |q| q.0);
                jobs.push(Job {
                    texts: wordings(&common),
                    anchors: vec![((lo, y), (hi, y))],
                    prefer: (at, y),
                    members: route.members.clone(),
                    rank: 2,
                });
            }
            for (&m, words) in route.members.iter().zip(&own) {
                if words.is_empty() {
                    continue;
                }
                let mut segs = segments_of(m);
                let (anchors, prefer) = match route.shared {
                    // In a bus an arrow owns only its line to or from its main-row box.
                    Some((_, true)) if route.members.len() > 1 => {
                        segs.truncate(1);
                        let p = segs.first().map_or((0.0, 0.0), |s| s.0);
                        (segs, p)
                    }
                    Some((_, false)) if route.members.len() > 1 => {
                        let last = segs.split_off(segs.len().saturating_sub(1));
                        let p = last.first().map_or((0.0, 0.0), |s| s.1);
                        (last, p)
                    }
                    _ => {
                        let longest = segs
                            .iter()
                            .copied()
                            .max_by(|a, b| seg_len(*a).total_cmp(&seg_len(*b)));
                        let p = longest.map_or((0.0, 0.0), |s| mid(s.0, s.1));
                        (segs, p)
                    }
                };
                jobs.push(Job {
                    texts: wordings(words),
                    anchors,
                    prefer,
                    members: vec![m],
                    rank: 1,
                });
            }
        }
        jobs.sort_by_key(|j| j.rank);

        let boxes: Vec<Rect> = self.nodes.iter().map(Node::rect).collect();
        let segments: Vec<(Pt, Pt)> = arrows
            .iter()
            .flat_map(|a| a.points.windows(2).map(|w| (w[0], w[1])))
            .collect();
        let bounds = Rect {
            x: 0.0,
            y: 0.0,
            w: self.width,
            h: self.height,
        };
        let mut placed: Vec<EdgeLabel> = Vec::new();
        for job in &jobs {
            let Some((rect, lines)) = place_label(job, &boxes, &placed, &segments, bounds) else {
                continue;
            };
            let baseline = rect.y + 1.0 + FONT - 1.5;
            placed.push(EdgeLabel {
                lines: lines
                    .into_iter()
                    .enumerate()
                    .map(|(k, text)| TextLine {
                        text,
                        x: r1(rect.cx()),
                        y: r1(baseline + k as f64 * LINE),
                    })
                    .collect(),
                rect,
                taken: job.members.iter().any(|&m| self.moves[m].taken),
                arrows: job
                    .members
                    .iter()
                    .map(|&m| format!("{}>{}", arrows[m].from, arrows[m].to))
                    .collect(),
                title: job
                    .members
                    .iter()
                    .map(|&m| {
                        format!(
                            "{} → {}: {}",
                            self.nodes[self.moves[m].from].label,
                            self.nodes[self.moves[m].to].label,
                            self.moves[m].labels.join("; ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
        placed
    }
}

/// The graph's edges between two different states, one per (from, to), in the core's order.
fn merge_moves(g: &WorkflowGraph) -> Vec<Move> {
    let index = |id: &str| g.states.iter().position(|s| s.id == id);
    let mut moves: Vec<Move> = Vec::new();
    for e in g.edges.iter().filter(|e| e.from != e.to) {
        let (Some(from), Some(to)) = (index(e.from), index(e.to)) else {
            continue;
        };
        match moves.iter_mut().find(|m| m.from == from && m.to == to) {
            Some(m) => {
                if !m.labels.contains(&e.label) {
                    m.labels.push(e.label);
                }
                m.taken |= e.taken;
            }
            None => moves.push(Move {
                from,
                to,
                labels: vec![e.label],
                taken: e.taken,
            }),
        }
    }
    moves
}

/// A box's name on one line when it fits, else two.
fn name_lines(n: &Node) -> Vec<TextLine> {
    let options = wraps(n.label, NODE_FONT);
    let fits = |ls: &&Vec<String>| {
        ls.iter()
            .all(|l| text_width(l, NODE_FONT, true) <= n.w - 12.0)
    };
    let lines = options
        .iter()
        .take(2)
        .find(fits)
        .or(options.get(1))
        .cloned()
        .unwrap_or_else(|| vec![n.label.to_string()]);
    let first = n.y + n.h / 2.0 + 4.5 - (lines.len() - 1) as f64 * NODE_LINE / 2.0;
    lines
        .into_iter()
        .enumerate()
        .map(|(k, text)| TextLine {
            text,
            x: r1(n.x + n.w / 2.0),
            y: r1(first + k as f64 * NODE_LINE),
        })
        .collect()
}

/// Every order of `0..n` (levels for `n` routes); beyond six routes only the given order.
fn orders(n: usize) -> Vec<Vec<usize>> {
    fn go(prefix: &mut Vec<usize>, n: usize, out: &mut Vec<Vec<usize>>) {
        if prefix.len() == n {
            out.push(prefix.clone());
            return;
        }
        for i in 0..n {
            if !prefix.contains(&i) {
                prefix.push(i);
                go(prefix, n, out);
                prefix.pop();
            }
        }
    }
    if n > 6 {
        return vec![(0..n).collect()];
    }
    let mut out = Vec::new();
    go(&mut Vec::new(), n, &mut out);
    out
}

/// How many places lines of different routes cross (each line is horizontal or vertical; the
/// arrows of a bus run over each other, and their crossing with another line is one).
fn crossings(segs: &[(usize, Pt, Pt)]) -> usize {
    let mut points: Vec<(i64, i64)> = Vec::new();
    for (i, a) in segs.iter().enumerate() {
        for b in &segs[i + 1..] {
            if let Some((x, y)) = (a.0 != b.0)
                .then(|| crossing((a.1, a.2), (b.1, b.2)))
                .flatten()
            {
                points.push(((x * 10.0).round() as i64, (y * 10.0).round() as i64));
            }
        }
    }
    points.sort_unstable();
    points.dedup();
    points.len()
}

/// Where a horizontal and a vertical segment cross inside both.
fn crossing(a: (Pt, Pt), b: (Pt, Pt)) -> Option<Pt> {
    let horizontal = |s: (Pt, Pt)| (s.0 .1 - s.1 .1).abs() < 1e-9;
    let (h, v) = match (horizontal(a), horizontal(b)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return None,
    };
    let (x, y) = (v.0 .0, h.0 .1);
    let inside = |p: f64, e1: f64, e2: f64| p > e1.min(e2) + 0.5 && p < e1.max(e2) - 0.5;
    (inside(x, h.0 .0, h.1 .0) && inside(y, v.0 .1, v.1 .1)).then_some((x, y))
}

fn on_segment(a: Pt, b: Pt, p: Pt) -> bool {
    let within = |v: f64, e1: f64, e2: f64| v >= e1.min(e2) - 0.01 && v <= e1.max(e2) + 0.01;
    let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
    cross.abs() < 0.01 && within(p.0, a.0, b.0) && within(p.1, a.1, b.1)
}

fn seg_len(s: (Pt, Pt)) -> f64 {
    ((s.1 .0 - s.0 .0).powi(2) + (s.1 .1 - s.0 .1).powi(2)).sqrt()
}

fn mid(a: Pt, b: Pt) -> Pt {
    ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
}

/// Drops repeated points and corners that are not corners.
fn simplify(points: Vec<Pt>) -> Vec<Pt> {
    let mut out: Vec<Pt> = Vec::new();
    for p in points {
        if out
            .last()
            .is_some_and(|q| (q.0 - p.0).abs() < 0.01 && (q.1 - p.1).abs() < 0.01)
        {
            continue;
        }
        if out.len() >= 2 {
            let (a, b) = (out[out.len() - 2], out[out.len() - 1]);
            if on_segment(a, p, b) {
                out.pop();
            }
        }
        out.push(p);
    }
    out
}

fn path_data(points: &[Pt]) -> String {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}{} {}", if i == 0 { 'M' } else { 'L' }, r1(p.0), r1(p.1)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words to place beside one or more arrows.
#[derive(Debug)]
struct Job {
    /// What to write, preferred first.
    texts: Vec<String>,
    /// The segments they may sit beside.
    anchors: Vec<(Pt, Pt)>,
    /// Where they read best.
    prefer: Pt,
    members: Vec<usize>,
    rank: u8,
}

/// The best free place for a label: beside one of its segments, clear of every box and every
/// label placed so far and inside the drawing, over as few lines as possible, on as few lines
/// of words as possible and near where it reads best. None when there is no room.
fn place_label(
    job: &Job,
    boxes: &[Rect],
    placed: &[EdgeLabel],
    segments: &[(Pt, Pt)],
    bounds: Rect,
) -> Option<(Rect, Vec<String>)> {
    const PAD: f64 = 3.0;
    let mut best: Option<(f64, Rect, Vec<String>)> = None;
    for (ti, text) in job.texts.iter().enumerate() {
        for lines in wraps(text, FONT) {
            let w = lines
                .iter()
                .map(|l| text_width(l, FONT, false))
                .fold(0.0, f64::max)
                + 2.0 * PAD;
            let h = lines.len() as f64 * LINE + 2.0;
            let cost = ti as f64 * 60.0 + (lines.len() - 1) as f64 * 14.0;
            for &(a, b) in &job.anchors {
                for rect in candidates(a, b, w, h) {
                    let inside = rect.x >= bounds.x
                        && rect.y >= bounds.y
                        && rect.right() <= bounds.right()
                        && rect.bottom() <= bounds.bottom();
                    if !inside
                        || boxes.iter().any(|n| n.overlaps(&rect, 2.0))
                        || placed.iter().any(|l| l.rect.overlaps(&rect, 2.0))
                    {
                        continue;
                    }
                    let over = segments.iter().filter(|s| rect.cut_by(s.0, s.1)).count();
                    let dist = ((rect.cx() - job.prefer.0).powi(2)
                        + (rect.cy() - job.prefer.1).powi(2))
                    .sqrt();
                    let score = cost + over as f64 * 40.0 + dist / 6.0;
                    if best.as_ref().is_none_or(|b| score < b.0) {
                        best = Some((score, rect, lines.clone()));
                    }
                }
            }
        }
    }
    best.map(|(_, r, l)| {
        (
            Rect {
                x: r1(r.x),
                y: r1(r.y),
                w: r1(r.w),
                h: r1(r.h),
            },
            l,
        )
    })
}

/// Places for a `w`×`h` label beside the segment `a`-`b`: above or below a horizontal one,
/// left or right of a vertical one, slid along it.
fn candidates(a: Pt, b: Pt, w: f64, h: f64) -> Vec<Rect> {
    const OFF: f64 = 2.0;
    let mut out = Vec::new();
    let slide = |lo: f64, hi: f64, size: f64| -> Vec<f64> {
        let (from, to) = (lo + size / 2.0, hi - size / 2.0);
        if to <= from {
            return vec![(lo + hi) / 2.0];
        }
        let steps = ((to - from) / 4.0).ceil().max(1.0) as usize;
        (0..=steps)
            .map(|i| from + (to - from) * i as f64 / steps as f64)
            .collect()
    };
    if (a.1 - b.1).abs() < 1e-9 {
        let y = a.1;
        for cx in slide(a.0.min(b.0), a.0.max(b.0), w) {
            out.push(Rect {
                x: cx - w / 2.0,
                y: y - OFF - h,
                w,
                h,
            });
            out.push(Rect {
                x: cx - w / 2.0,
                y: y + OFF,
                w,
                h,
            });
        }
    } else {
        let x = a.0;
        for cy in slide(a.1.min(b.1), a.1.max(b.1), h) {
            out.push(Rect {
                x: x + OFF + 1.0,
                y: cy - h / 2.0,
                w,
                h,
            });
            out.push(Rect {
                x: x - OFF - 1.0 - w,
                y: cy - h / 2.0,
                w,
                h,
            });
        }
    }
    out
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// One state of the text version of "Show Workflow", with the moves that leave it.
#[derive(Clone, Debug, Serialize)]
pub struct OutlineState {
    pub id: &'static str,
    pub label: &'static str,
    pub current: bool,
    pub visited: bool,
    pub moves: Vec<OutlineMove>,
}

/// One move of the text version: on `event`, to the state named `to`.
#[derive(Clone, Debug, Serialize)]
pub struct OutlineMove {
    pub event: &'static str,
    pub to: &'static str,
    /// The move keeps the candidate where it is (a reminder, a re-check).
    pub stays: bool,
    pub taken: bool,
}

/// The drawing as a list, for screen readers and for whoever would rather read it: every
/// state and every move that leaves it, from the same graph, so the two never disagree.
pub fn workflow_outline(g: &WorkflowGraph) -> Vec<OutlineState> {
    let name = |id: &str| g.states.iter().find(|s| s.id == id).map(|s| s.label);
    g.states
        .iter()
        .map(|s| OutlineState {
            id: s.id,
            label: s.label,
            current: s.current,
            visited: s.visited,
            moves: g
                .edges
                .iter()
                .filter(|e| e.from == s.id)
                .filter_map(|e| {
                    Some(OutlineMove {
                        event: e.label,
                        to: name(e.to)?,
                        stays: e.to == e.from,
                        taken: e.taken,
                    })
                })
                .collect(),
        })
        .collect()
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
    use reclaim_workflow::graph::{GraphEdge, GraphState};
    use reclaim_workflow::{workflow_graph, ActorRef, HistoryEntry, State};

    fn step(event: &str, from: State, to: State) -> HistoryEntry {
        HistoryEntry {
            candidate_id: "c1".into(),
            version: 1,
            at: chrono::DateTime::UNIX_EPOCH,
            actor: ActorRef::Scheduler,
            event: event.into(),
            from,
            to,
            reason: None,
            ip: None,
            user_agent: None,
        }
    }

    /// Graphs with paths through every kind of line: along the main row, the buses above and
    /// below it, the way around the left edge.
    fn paths() -> Vec<(State, Vec<HistoryEntry>)> {
        use State::*;
        vec![
            (
                ClosedComplete,
                vec![
                    step("reclaim", Ready, AwaitingUser),
                    step("answer-keep", AwaitingUser, AwaitingApproval),
                    step("reject", AwaitingApproval, AwaitingRevocation),
                    step("verified-absent", AwaitingRevocation, ClosedComplete),
                ],
            ),
            (
                ClosedSkipped,
                vec![
                    step("mail-refused", Ready, AttentionRequired),
                    step("resume", AttentionRequired, Ready),
                    step("reclaim", Ready, AttentionRequired),
                    step("close-skipped", AttentionRequired, ClosedSkipped),
                ],
            ),
            (
                ClosedCanceled,
                vec![
                    step("reclaim", Ready, AwaitingUser),
                    step("usage-detected", AwaitingUser, ClosedCanceled),
                ],
            ),
        ]
    }

    /// Every stage as the current one, and the paths.
    fn every_graph() -> Vec<WorkflowGraph> {
        let mut graphs: Vec<WorkflowGraph> = State::ALL
            .iter()
            .map(|s| workflow_graph(Some(*s), &[]))
            .collect();
        graphs.push(workflow_graph(None, &[]));
        graphs.extend(paths().iter().map(|(s, h)| workflow_graph(Some(*s), h)));
        graphs
    }

    fn segments(a: &Arrow) -> Vec<(Pt, Pt)> {
        a.points.windows(2).map(|w| (w[0], w[1])).collect()
    }

    fn on_border(r: &Rect, p: Pt) -> bool {
        let near = |a: f64, b: f64| (a - b).abs() < 0.06;
        let within = |v: f64, lo: f64, hi: f64| v >= lo - 0.06 && v <= hi + 0.06;
        ((near(p.0, r.x) || near(p.0, r.right())) && within(p.1, r.y, r.bottom()))
            || ((near(p.1, r.y) || near(p.1, r.bottom())) && within(p.0, r.x, r.right()))
    }

    /// What every drawing must be, whatever the stage and path.
    fn assert_readable(g: &WorkflowGraph, d: &GraphDrawing) {
        let all = Rect {
            x: 0.0,
            y: 0.0,
            w: d.width,
            h: d.height,
        };
        assert!(d.width.is_finite() && d.height.is_finite() && d.width > 0.0);
        let boxes: Vec<(&str, Rect)> = d.nodes.iter().map(|n| (n.id, n.rect())).collect();
        let contained = |r: &Rect| {
            [r.x, r.y, r.w, r.h].iter().all(|v| v.is_finite())
                && r.x >= 0.0
                && r.y >= 0.0
                && r.right() <= all.right() + 0.01
                && r.bottom() <= all.bottom() + 0.01
        };
        for (id, b) in &boxes {
            assert!(contained(b), "{id} is outside the drawing");
        }
        for a in &d.arrows {
            let name = format!("{}→{}", a.from, a.to);
            assert!(a.points.len() >= 2, "{name} is drawn");
            for p in &a.points {
                assert!(p.0.is_finite() && p.1.is_finite(), "{name}: {p:?}");
                assert!(
                    contained(&Rect {
                        x: p.0,
                        y: p.1,
                        w: 0.0,
                        h: 0.0
                    }),
                    "{name}: {p:?}"
                );
            }
            for (p, q) in segments(a) {
                assert!(
                    p.0 == q.0 || p.1 == q.1,
                    "{name} has a slanted line {p:?}-{q:?}"
                );
                for (id, b) in &boxes {
                    assert!(!b.cut_by(p, q), "{name} passes through {id} ({p:?}-{q:?})");
                }
            }
            let ends = |id: &str| boxes.iter().find(|b| b.0 == id).map(|b| b.1);
            let (from, to) = (ends(a.from).unwrap(), ends(a.to).unwrap());
            assert!(on_border(&from, a.points[0]), "{name} starts off its box");
            assert!(
                on_border(&to, a.points[a.points.len() - 1]),
                "{name} ends off its box"
            );
            let last = segments(a).last().copied().unwrap();
            assert!(seg_len(last) >= 10.0, "{name}: no room for its arrowhead");
        }
        for (i, l) in d.labels.iter().enumerate() {
            assert!(contained(&l.rect), "{:?} is outside the drawing", l.lines);
            assert!(!l.lines.is_empty() && l.lines.iter().all(|t| !t.text.is_empty()));
            for (id, b) in &boxes {
                assert!(!l.rect.overlaps(b, 0.0), "{:?} lies on {id}", l.lines);
            }
            for o in &d.labels[i + 1..] {
                assert!(
                    !l.rect.overlaps(&o.rect, 0.0),
                    "{:?} lies on {:?}",
                    l.lines,
                    o.lines
                );
            }
        }
        // Every move has words: its own, or its bus's.
        for a in &d.arrows {
            let key = format!("{}>{}", a.from, a.to);
            assert!(
                d.labels.iter().any(|l| l.arrows.contains(&key)),
                "{key} has no words"
            );
        }
        // Every move between two different states is drawn, both ways where there are both.
        let mut pairs: Vec<(&str, &str)> = g
            .edges
            .iter()
            .filter(|e| e.from != e.to)
            .map(|e| (e.from, e.to))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(d.arrows.len(), pairs.len());
        for a in &d.arrows {
            if let Some(back) = d.arrows.iter().find(|b| b.from == a.to && b.to == a.from) {
                let shared = segments(a).iter().any(|s| {
                    segments(back)
                        .iter()
                        .any(|t| on_segment(t.0, t.1, mid(s.0, s.1)))
                });
                assert!(!shared, "{}→{} and back run over each other", a.from, a.to);
            }
        }
    }

    #[test]
    fn no_line_passes_through_a_box_and_no_words_lie_on_a_box_or_on_other_words() {
        for g in every_graph() {
            assert_readable(&g, &workflow_drawing(&g));
        }
    }

    #[test]
    fn the_main_path_runs_left_to_right_on_one_row_and_the_other_states_off_it() {
        let d = workflow_drawing(&workflow_graph(Some(State::Ready), &[]));
        let at = |id: &str| d.nodes.iter().find(|n| n.id == id).unwrap();
        let main = [
            "ready",
            "awaiting-user",
            "awaiting-approval",
            "awaiting-revocation",
            "closed-complete",
        ];
        for w in main.windows(2) {
            assert_eq!(at(w[0]).y, at(w[1]).y, "{} and {} share a row", w[0], w[1]);
            assert!(
                at(w[0]).x + at(w[0]).w < at(w[1]).x,
                "{} is left of {}",
                w[0],
                w[1]
            );
        }
        for side in ["attention-required", "closed-skipped", "closed-canceled"] {
            assert_ne!(at(side).y, at("ready").y, "{side} is off the main row");
        }
        // Neighbours on the main row: one straight arrow, its words between the boxes.
        let a = d
            .arrows
            .iter()
            .find(|a| a.from == "awaiting-user" && a.to == "awaiting-approval")
            .unwrap();
        assert_eq!(a.points.len(), 2);
        let l = d
            .labels
            .iter()
            .find(|l| l.arrows == ["awaiting-user>awaiting-approval"])
            .unwrap();
        assert_eq!(l.lines[0].text, "User: Yes, keep");
        assert!(
            l.rect.x >= at("awaiting-user").x + BOX_W
                && l.rect.right() <= at("awaiting-approval").x
        );
    }

    #[test]
    fn the_current_stage_and_the_path_taken_are_marked() {
        let (state, history) = paths().swap_remove(0);
        let d = workflow_drawing(&workflow_graph(Some(state), &history));
        let current: Vec<&str> = d.nodes.iter().filter(|n| n.current).map(|n| n.id).collect();
        assert_eq!(current, ["closed-complete"]);
        let mut taken: Vec<String> = d
            .arrows
            .iter()
            .filter(|a| a.taken)
            .map(|a| format!("{}>{}", a.from, a.to))
            .collect();
        taken.sort();
        assert_eq!(
            taken,
            [
                "awaiting-approval>awaiting-revocation",
                "awaiting-revocation>closed-complete",
                "awaiting-user>awaiting-approval",
                "ready>awaiting-user",
            ]
        );
        // Drawn last, over the others; their words highlighted with them.
        let first_taken = d.arrows.iter().position(|a| a.taken).unwrap();
        assert!(d.arrows[first_taken..].iter().all(|a| a.taken));
        for t in &taken {
            assert!(
                d.labels.iter().any(|l| l.taken && l.arrows.contains(t)),
                "{t}"
            );
        }
        assert!(d.labels.iter().any(|l| !l.taken));
        let visited = d.nodes.iter().filter(|n| n.visited).count();
        assert_eq!(visited, 5);
    }

    #[test]
    fn moves_into_one_side_state_share_a_bus_and_its_words() {
        let g = workflow_graph(Some(State::Ready), &[]);
        let d = workflow_drawing(&g);
        let canceled: Vec<&EdgeLabel> = d
            .labels
            .iter()
            .filter(|l| l.arrows.iter().any(|a| a.ends_with(">closed-canceled")))
            .collect();
        assert_eq!(canceled.len(), 1, "one label for the bus");
        assert_eq!(canceled[0].arrows.len(), 3);
        assert_eq!(canceled[0].lines[0].text, "Usage seen again");
        // The words each move adds to its bus sit on its own line.
        let missing = d
            .labels
            .iter()
            .find(|l| l.arrows == ["ready>attention-required"])
            .unwrap();
        let text: Vec<&str> = missing.lines.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(text.join(" "), "Reclaim: user or email missing");
        // A dot where an arrow joins a bus.
        assert!(!d.joins.is_empty());
        assert!(d
            .joins
            .iter()
            .all(|j| j.x.is_finite() && j.y.is_finite() && !j.taken));
    }

    #[test]
    fn shortened_words_keep_everything_in_the_tooltip() {
        let d = workflow_drawing(&workflow_graph(Some(State::Ready), &[]));
        let l = d
            .labels
            .iter()
            .find(|l| l.arrows == ["awaiting-revocation>closed-complete"])
            .unwrap();
        let shown: Vec<&str> = l.lines.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(shown.join(" "), "Verified absent at the vendor (+2 more)");
        assert!(l.title.contains("Removed; not verifiable") && l.title.contains("Close Complete"));
        let a = d
            .arrows
            .iter()
            .find(|a| a.from == "awaiting-revocation" && a.to == "closed-complete")
            .unwrap();
        assert_eq!(
            a.label,
            "Verified absent at the vendor; Removed; not verifiable; Close Complete"
        );
    }

    #[test]
    fn a_state_the_core_adds_later_is_still_drawn_clear_of_the_others() {
        let mut g = workflow_graph(Some(State::AwaitingUser), &[]);
        g.states.push(GraphState {
            id: "on-hold",
            label: "On Hold",
            current: false,
            visited: false,
        });
        for (from, to) in [("awaiting-user", "on-hold"), ("on-hold", "awaiting-user")] {
            g.edges.push(GraphEdge {
                from,
                to,
                label: "Hold",
                taken: false,
            });
        }
        // An edge naming no state is left out rather than drawn anywhere.
        g.edges.push(GraphEdge {
            from: "ready",
            to: "no-such-state",
            label: "Nowhere",
            taken: false,
        });
        let d = workflow_drawing(&g);
        assert_eq!(d.nodes.len(), 9);
        g.edges.pop();
        assert_readable(&g, &d);
    }

    #[test]
    fn every_name_fits_its_box() {
        let d = workflow_drawing(&workflow_graph(None, &[]));
        for n in &d.nodes {
            assert!(!n.lines.is_empty() && n.lines.len() <= 2, "{}", n.id);
            for t in &n.lines {
                assert!(
                    text_width(&t.text, NODE_FONT, true) <= n.w - 8.0,
                    "{}",
                    t.text
                );
                assert!(t.y > n.y && t.y < n.y + n.h);
            }
            let joined: Vec<&str> = n.lines.iter().map(|t| t.text.as_str()).collect();
            assert_eq!(joined.join(" "), n.label);
        }
    }

    #[test]
    fn the_text_version_lists_every_move_of_every_state() {
        let (state, history) = paths().swap_remove(0);
        let g = workflow_graph(Some(state), &history);
        let outline = workflow_outline(&g);
        assert_eq!(outline.len(), 8);
        assert_eq!(
            outline.iter().map(|s| s.moves.len()).sum::<usize>(),
            g.edges.len()
        );
        let current: Vec<&str> = outline.iter().filter(|s| s.current).map(|s| s.id).collect();
        assert_eq!(current, ["closed-complete"]);
        let user = outline.iter().find(|s| s.id == "awaiting-user").unwrap();
        let keep = user
            .moves
            .iter()
            .find(|m| m.event == "User: Yes, keep")
            .unwrap();
        assert_eq!(
            (keep.to, keep.taken, keep.stays),
            ("Awaiting Approval", true, false)
        );
        let remind = user.moves.iter().find(|m| m.event == "Reminder").unwrap();
        assert!(remind.stays && !remind.taken);
        let skipped = outline.iter().find(|s| s.id == "closed-skipped").unwrap();
        assert!(skipped.moves.is_empty());
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
