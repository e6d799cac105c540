//! The lineage graph: topics → pipelines → topics, each pipeline → the plugin versions it
//! runs, laid out in columns and drawn as inline SVG whose nodes are links.
//!
//! Bounded: at most [`MAX_NODES`] nodes are drawn (a focus keeps the nearest ones first), the
//! layering is one topological pass (cycles are cut, not iterated) and the ordering within a
//! column one barycenter pass, so a registry with thousands of pipelines costs a page of a
//! few hundred boxes and linear time, never a hung tab.

use std::collections::{BTreeMap, HashMap, VecDeque};

use maud::{Markup, html};

use super::layout::{pipeline_href, plugin_version_href, subject_href};
use crate::store::Pipeline;

/// Nodes drawn at most.
pub const MAX_NODES: usize = 300;
/// Label characters shown in a box (the full name is its tooltip).
const MAX_LABEL: usize = 26;
const COL_WIDTH: usize = 230;
const BOX_WIDTH: usize = 180;
const ROW_HEIGHT: usize = 46;
const BOX_HEIGHT: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Topic,
    Pipeline,
    Plugin,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Topic => "topic",
            Kind::Pipeline => "pipeline",
            Kind::Plugin => "plugin",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// Topic name, pipeline name, or `plugin@version`.
    pub label: String,
    pub href: String,
}

/// Nodes and directed edges (indices into `nodes`).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<(usize, usize)>,
}

impl Graph {
    /// The graph of every registered pipeline.
    pub fn of(pipelines: &[Pipeline]) -> Self {
        let mut graph = Graph::default();
        let mut index: HashMap<(Kind, String), usize> = HashMap::new();
        let mut node = |graph: &mut Graph, kind: Kind, label: String, href: String| {
            *index.entry((kind, label.clone())).or_insert_with(|| {
                graph.nodes.push(Node { kind, label, href });
                graph.nodes.len() - 1
            })
        };
        for p in pipelines {
            let me = node(
                &mut graph,
                Kind::Pipeline,
                p.name.clone(),
                pipeline_href(&p.name),
            );
            for e in &p.sources {
                let t = node(
                    &mut graph,
                    Kind::Topic,
                    e.topic.clone(),
                    subject_href(&e.subject()),
                );
                graph.edges.push((t, me));
            }
            for e in &p.sinks {
                let t = node(
                    &mut graph,
                    Kind::Topic,
                    e.topic.clone(),
                    subject_href(&e.subject()),
                );
                graph.edges.push((me, t));
            }
            for s in &p.processors {
                let href = plugin_version_href(&s.name, &s.version);
                let v = node(&mut graph, Kind::Plugin, s.id(), href);
                graph.edges.push((me, v));
            }
        }
        graph.edges.sort_unstable();
        graph.edges.dedup();
        graph
    }

    /// The node of this kind and label, if present.
    pub fn find(&self, kind: Kind, label: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.kind == kind && n.label == label)
    }

    /// At most `max` nodes: breadth-first from `focus` (both directions), else in order;
    /// returns the kept graph and how many nodes there were.
    pub fn bounded(&self, focus: Option<usize>, max: usize) -> (Graph, usize) {
        let total = self.nodes.len();
        let order: Vec<usize> = match focus {
            Some(start) => {
                let mut neighbours = vec![Vec::new(); total];
                for &(a, b) in &self.edges {
                    neighbours[a].push(b);
                    neighbours[b].push(a);
                }
                let mut seen = vec![false; total];
                let mut queue = VecDeque::from([start]);
                seen[start] = true;
                let mut order = Vec::new();
                while let Some(n) = queue.pop_front() {
                    order.push(n);
                    if order.len() >= max {
                        break;
                    }
                    for &m in &neighbours[n] {
                        if !seen[m] {
                            seen[m] = true;
                            queue.push_back(m);
                        }
                    }
                }
                order
            }
            None => (0..total.min(max)).collect(),
        };
        let mut remap = vec![usize::MAX; total];
        let mut kept = Graph::default();
        for (new, &old) in order.iter().enumerate() {
            remap[old] = new;
            kept.nodes.push(self.nodes[old].clone());
        }
        kept.edges = self
            .edges
            .iter()
            .filter(|(a, b)| remap[*a] != usize::MAX && remap[*b] != usize::MAX)
            .map(|&(a, b)| (remap[a], remap[b]))
            .collect();
        (kept, total)
    }
}

/// Column and row of each node.
pub fn layout(graph: &Graph) -> Vec<(usize, usize)> {
    let n = graph.nodes.len();
    let mut incoming = vec![0usize; n];
    let mut outgoing = vec![Vec::new(); n];
    let mut preds = vec![Vec::new(); n];
    for &(a, b) in &graph.edges {
        incoming[b] += 1;
        outgoing[a].push(b);
        preds[b].push(a);
    }
    // Longest path from the roots, in one topological pass (Kahn). Nodes on a cycle are never
    // freed by it: they take one column after their placed predecessors, once, in order.
    let mut column = vec![0usize; n];
    let mut placed = vec![false; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| incoming[i] == 0).collect();
    let mut left = incoming.clone();
    while let Some(i) = queue.pop_front() {
        placed[i] = true;
        for &j in &outgoing[i] {
            column[j] = column[j].max(column[i] + 1);
            left[j] -= 1;
            if left[j] == 0 {
                queue.push_back(j);
            }
        }
    }
    for i in 0..n {
        if !placed[i] {
            column[i] = preds[i]
                .iter()
                .filter(|&&p| placed[p])
                .map(|&p| column[p] + 1)
                .max()
                .unwrap_or(0);
            placed[i] = true;
        }
    }
    // Rows: by kind and name first, then one barycenter pass left to right so a node sits
    // near the nodes feeding it.
    let mut columns: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &c) in column.iter().enumerate() {
        columns.entry(c).or_default().push(i);
    }
    let mut row = vec![0usize; n];
    for members in columns.values_mut() {
        members.sort_by(|&a, &b| {
            let (x, y) = (&graph.nodes[a], &graph.nodes[b]);
            (x.kind, &x.label).cmp(&(y.kind, &y.label))
        });
        let centre = |i: usize| -> f64 {
            let placed: Vec<f64> = preds[i].iter().map(|&p| row[p] as f64).collect();
            if placed.is_empty() {
                f64::MAX
            } else {
                placed.iter().sum::<f64>() / placed.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize, usize)> = members
            .iter()
            .enumerate()
            .map(|(at, &i)| (centre(i), at, i))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, &(_, _, i)) in keyed.iter().enumerate() {
            row[i] = r;
        }
    }
    (0..n).map(|i| (column[i], row[i])).collect()
}

/// The graph as an SVG element: boxes as links, edges as curves with arrows.
pub fn svg(graph: &Graph) -> Markup {
    let at = layout(graph);
    let cols = at.iter().map(|p| p.0 + 1).max().unwrap_or(1);
    let rows = at.iter().map(|p| p.1 + 1).max().unwrap_or(1);
    let width = cols * COL_WIDTH + 20;
    let height = rows * ROW_HEIGHT + 20;
    let x = |i: usize| 10 + at[i].0 * COL_WIDTH;
    let y = |i: usize| 10 + at[i].1 * ROW_HEIGHT;
    html! {
        svg #lineage-graph xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="lineage graph" {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for &(a, b) in &graph.edges {
                @let (x1, y1) = (x(a) + BOX_WIDTH, y(a) + BOX_HEIGHT / 2);
                @let (x2, y2) = (x(b), y(b) + BOX_HEIGHT / 2);
                @let bend = (x2.max(x1) - x1.min(x2)) / 2 + 20;
                path class=(format!("edge to-{}", graph.nodes[b].kind.as_str())) marker-end="url(#arrow)"
                    d=(format!("M {x1} {y1} C {} {y1}, {} {y2}, {x2} {y2}", x1 + bend, x2.saturating_sub(bend))) {}
            }
            @for (i, node) in graph.nodes.iter().enumerate() {
                a href=(node.href) class=(format!("node {}", node.kind.as_str())) data-label=(node.label) {
                    title { (node.kind.as_str()) " " (node.label) }
                    rect x=(x(i)) y=(y(i)) width=(BOX_WIDTH) height=(BOX_HEIGHT) rx="6" {}
                    text x=(x(i) + 10) y=(y(i) + 20) { (shorten(&node.label)) }
                }
            }
        }
    }
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(MAX_LABEL - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(name: &str, from: &str, to: &str, plugin: &str) -> Pipeline {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "sources": [{"topic": from}],
            "sinks": [{"topic": to}],
            "processors": [{"name": plugin, "version": "1.0.0"}],
        }))
        .expect("view")
    }

    #[test]
    fn topics_pipelines_and_plugins_are_linked_in_columns() {
        let g = Graph::of(&[
            pipeline("clean", "raw", "clean", "filter"),
            pipeline("mask", "clean", "masked", "mask"),
        ]);
        let raw = g.find(Kind::Topic, "raw").expect("raw");
        let clean = g.find(Kind::Pipeline, "clean").expect("pipeline clean");
        let filter = g.find(Kind::Plugin, "filter@1.0.0").expect("plugin");
        assert!(g.edges.contains(&(raw, clean)));
        assert!(g.edges.contains(&(clean, filter)));
        assert_eq!(g.nodes[filter].href, "/ui/plugins/filter/1.0.0");
        assert_eq!(g.nodes[raw].href, "/ui/subjects/raw-value");
        let at = layout(&g);
        let masked = g.find(Kind::Topic, "masked").expect("masked");
        // raw → clean → clean(topic) → mask → masked: four steps to the right.
        assert_eq!(at[masked].0, at[raw].0 + 4);
        let html = svg(&g).into_string();
        assert!(html.contains(r#"href="/ui/pipelines/clean""#));
    }

    #[test]
    fn cycles_are_laid_out_once() {
        let g = Graph::of(&[pipeline("a", "x", "y", "p"), pipeline("b", "y", "x", "p")]);
        let at = layout(&g);
        assert_eq!(at.len(), g.nodes.len());
    }

    #[test]
    fn thousands_of_pipelines_draw_a_bounded_page() {
        let many: Vec<Pipeline> = (0..5000)
            .map(|i| {
                pipeline(
                    &format!("p{i}"),
                    &format!("t{i}"),
                    &format!("t{}", i + 1),
                    "mask",
                )
            })
            .collect();
        let g = Graph::of(&many);
        assert_eq!(g.nodes.len(), 5000 + 5001 + 1);
        let (kept, total) = g.bounded(None, MAX_NODES);
        assert_eq!(total, 10002);
        assert_eq!(kept.nodes.len(), MAX_NODES);
        assert_eq!(svg(&kept).into_string().matches("<rect").count(), MAX_NODES);
        // A focus keeps its neighbourhood: the pipeline, its topics and its plugin first.
        let focus = g.find(Kind::Pipeline, "p2500").expect("p2500");
        let (near, _) = g.bounded(Some(focus), 4);
        let mut labels: Vec<&str> = near.nodes.iter().map(|n| n.label.as_str()).collect();
        labels.sort_unstable();
        assert_eq!(labels, ["mask@1.0.0", "p2500", "t2500", "t2501"]);
    }
}
