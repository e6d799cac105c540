//! The walk down the lineage graph: from the fields of one subject to the stages that read
//! them, then on through every pipeline that passes a field to a sink topic under its name,
//! to the readers of that topic's subject, and so on.
//!
//! Cycles (P: A → B, Q: B → A) end because a (subject, field) pair is walked once; a huge
//! graph ends at [`MAX_VISITS`] units of work, and the walk says it was cut short.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use weft_registry_api::{Pipeline, PluginRef};

use super::{Change, overlaps, top};

/// Work a walk may do: one unit per pipeline examined, per (field, read) pair compared and
/// per topic of a `via` spelled out, so neither thousands of pipelines, nor a stage listing
/// thousands of fields, nor a chain thousands of pipelines long stalls a request.
pub const MAX_VISITS: usize = 2_000_000;
/// Readers a walk returns at most; past it the walk stops and says it was cut short, so an
/// answer (JSON or a catalog page) stays a few hundred KB whatever the graph.
pub const MAX_HITS: usize = 1000;
/// Topics a hit's `via` spells out at most: the first and last halves, with one
/// `… N more …` entry between (a 3000-pipeline chain is not worth 3000 names per reader).
pub const MAX_VIA: usize = 16;
/// Messages a guard answer lists at most; the rest are counted.
const MAX_MESSAGES: usize = 100;

/// A stage that reads (or may read) a field.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub pipeline: &'a Pipeline,
    /// 1-based position in the chain.
    pub position: usize,
    pub stage: &'a PluginRef,
    /// The topic the pipeline reads the field from.
    pub topic: String,
    /// Sink topics the field went through to get there (empty: a direct reader), at most
    /// [`MAX_VIA`] of them plus a `… N more …` marker.
    pub via: Vec<String>,
    /// The field as the walk started with it (it keeps its name all the way).
    pub field: String,
    /// The stage lists no fields: it may read any.
    pub all_fields: bool,
}

/// Every reader found, direct ones first; `truncated` if the work bound or [`MAX_HITS`] cut
/// the walk short.
#[derive(Debug, Default)]
pub struct Walk<'a> {
    pub hits: Vec<Hit<'a>>,
    pub truncated: bool,
}

/// One sink topic on a path from the start: its parent is the hop before it. Queue entries
/// and hits point here instead of each copying the whole list of topics.
struct Hop<'a> {
    topic: &'a str,
    parent: Option<usize>,
    depth: usize,
}

/// The topics from the start to `hop`, shortened to [`MAX_VIA`]; costs one step per hop.
fn spell_via(hops: &[Hop<'_>], hop: Option<usize>) -> Vec<String> {
    let Some(last) = hop else {
        return Vec::new();
    };
    let len = hops[last].depth;
    let keep = |depth: usize| len <= MAX_VIA || depth <= MAX_VIA / 2 || depth > len - MAX_VIA / 2;
    let mut back: Vec<&str> = Vec::new();
    let mut at = Some(last);
    while let Some(i) = at {
        if keep(hops[i].depth) {
            back.push(hops[i].topic);
        }
        at = hops[i].parent;
    }
    back.reverse();
    let mut via: Vec<String> = back.into_iter().map(str::to_string).collect();
    if len > MAX_VIA {
        via.insert(MAX_VIA / 2, format!("… {} more …", len - MAX_VIA));
    }
    via
}

/// The stages reading any of `fields` of `subject`, directly or downstream.
pub fn walk<'a>(pipelines: &'a [Pipeline], subject: &str, fields: &[String]) -> Walk<'a> {
    // Which pipelines read a subject, through which topic.
    let mut readers: HashMap<String, Vec<(&'a Pipeline, &'a str)>> = HashMap::new();
    for p in pipelines {
        let mut subjects = HashSet::new();
        for source in &p.sources {
            let s = source.subject();
            // Two topics of one subject: the pipeline reads the subject once.
            if subjects.insert(s.clone()) {
                readers.entry(s).or_default().push((p, &source.topic));
            }
        }
    }
    let mut out = Walk::default();
    let mut work = 0usize;
    let mut hops: Vec<Hop<'a>> = Vec::new();
    let mut walked: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut seen_hits: HashSet<(&str, usize, String)> = HashSet::new();
    let mut queue: VecDeque<(String, BTreeSet<String>, Option<usize>)> = VecDeque::new();
    queue.push_back((subject.to_string(), fields.iter().cloned().collect(), None));
    'walk: while let Some((subject, fields, hop)) = queue.pop_front() {
        let done = walked.entry(subject.clone()).or_default();
        let fresh: Vec<String> = fields.difference(done).cloned().collect();
        if fresh.is_empty() {
            continue;
        }
        done.extend(fresh.iter().cloned());
        for &(p, topic) in readers.get(&subject).into_iter().flatten() {
            work += 1;
            for (i, stage) in p.processors.iter().enumerate() {
                work += fresh.len() * stage.reads.as_ref().map_or(1, Vec::len);
                if work > MAX_VISITS {
                    out.truncated = true;
                    break 'walk;
                }
                for field in &fresh {
                    let reads = match &stage.reads {
                        None => true,
                        Some(list) => list.iter().any(|r| overlaps(r, field)),
                    };
                    if reads && seen_hits.insert((p.name.as_str(), i, field.clone())) {
                        if out.hits.len() == MAX_HITS {
                            out.truncated = true;
                            break 'walk;
                        }
                        work += hop.map_or(0, |h| hops[h].depth);
                        out.hits.push(Hit {
                            pipeline: p,
                            position: i + 1,
                            stage,
                            topic: topic.to_string(),
                            via: spell_via(&hops, hop),
                            field: field.clone(),
                            all_fields: stage.reads.is_none(),
                        });
                    }
                }
            }
            let passed: BTreeSet<String> = fresh
                .iter()
                .filter(|f| {
                    p.passes
                        .as_ref()
                        .is_none_or(|list| list.iter().any(|x| x == top(f)))
                })
                .cloned()
                .collect();
            if passed.is_empty() {
                continue;
            }
            work += p.sinks.len();
            let depth = hop.map_or(0, |h| hops[h].depth) + 1;
            for sink in &p.sinks {
                hops.push(Hop {
                    topic: &sink.topic,
                    parent: hop,
                    depth,
                });
                queue.push_back((sink.subject(), passed.clone(), Some(hops.len() - 1)));
            }
        }
    }
    out
}

/// Why a candidate schema for `subject` would block the upgrade of the pipelines reading it,
/// one message per stage and changed field it reads: `pipeline P: stage filter@1.0.0 (#1)
/// reads field "year" from topic orders: removed`. Empty: nothing blocks.
pub fn guard_messages(pipelines: &[Pipeline], subject: &str, changes: &[Change]) -> Vec<String> {
    if changes.is_empty() {
        return Vec::new();
    }
    let fields: Vec<String> = changes.iter().map(|c| c.path.clone()).collect();
    let walk = walk(pipelines, subject, &fields);
    let rules: HashMap<&str, &str> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.rule.as_str()))
        .collect();
    let mut messages: Vec<String> = walk
        .hits
        .iter()
        .map(|hit| {
            let rule = rules.get(hit.field.as_str()).copied().unwrap_or("changed");
            let field = if hit.field.is_empty() {
                "the schema as a whole".to_string()
            } else {
                format!("field \"{}\"", hit.field)
            };
            let reads = if hit.all_fields {
                format!("reads every field (it reports no list), so {field}")
            } else {
                format!("reads {field}")
            };
            let from = if hit.via.is_empty() {
                format!("from topic {}", hit.topic)
            } else {
                format!(
                    "from topic {} (downstream of {subject} via {})",
                    hit.topic,
                    hit.via.join(" → ")
                )
            };
            format!(
                "pipeline {}: stage {} (#{}) {reads} {from}: {rule}",
                hit.pipeline.name,
                hit.stage.id(),
                hit.position
            )
        })
        .collect();
    if messages.len() > MAX_MESSAGES {
        let more = messages.len() - MAX_MESSAGES;
        messages.truncate(MAX_MESSAGES);
        messages.push(format!("... and {more} more"));
    }
    if walk.truncated {
        messages.push(format!(
            "the lineage graph below {subject} is too large to check in full ({MAX_VISITS} steps): refused rather than guessed"
        ));
    }
    messages
}

#[cfg(test)]
mod tests {
    use weft_registry_api::Endpoint;

    use super::*;

    fn stage(name: &str, reads: Option<&[&str]>) -> PluginRef {
        PluginRef {
            name: name.into(),
            version: "1.0.0".into(),
            reads: reads.map(|r| r.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn pipeline(
        name: &str,
        from: &str,
        to: &[&str],
        stages: Vec<PluginRef>,
        passes: Option<&[&str]>,
    ) -> Pipeline {
        let topic = |t: &&str| Endpoint {
            topic: t.to_string(),
            subject: None,
        };
        Pipeline {
            name: name.into(),
            sources: vec![topic(&from)],
            sinks: to.iter().map(topic).collect(),
            processors: stages,
            passes: passes.map(|p| p.iter().map(|s| s.to_string()).collect()),
            ..Pipeline::default()
        }
    }

    fn removed(path: &str) -> Change {
        Change {
            path: path.into(),
            rule: "removed".into(),
        }
    }

    #[test]
    fn only_stages_reading_the_field_or_every_field_are_hit_downstream_too() {
        let all = [
            pipeline(
                "p",
                "orders",
                &["clean"],
                vec![
                    stage("filter", Some(&["year"])),
                    stage("mask", Some(&["email"])),
                ],
                Some(&["year", "email"]),
            ),
            pipeline("q", "clean", &[], vec![stage("old", None)], None),
            pipeline(
                "r",
                "orders",
                &[],
                vec![stage("project", Some(&["id"]))],
                None,
            ),
        ];
        let w = walk(&all, "orders-value", &["year".into()]);
        let found: Vec<(&str, usize, Vec<String>, bool)> = w
            .hits
            .iter()
            .map(|h| {
                (
                    h.pipeline.name.as_str(),
                    h.position,
                    h.via.clone(),
                    h.all_fields,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("p", 1, vec![], false),
                ("q", 1, vec!["clean".to_string()], true)
            ]
        );
        // A field nobody reads and `p` does not pass blocks nothing.
        assert!(guard_messages(&all, "orders-value", &[removed("note")]).is_empty());
        let messages = guard_messages(&all, "orders-value", &[removed("year")]);
        assert_eq!(
            messages[0],
            "pipeline p: stage filter@1.0.0 (#1) reads field \"year\" from topic orders: removed"
        );
        assert!(messages[1].starts_with("pipeline q: stage old@1.0.0 (#1) reads every field"));
        assert!(messages[1].contains("via clean"), "{}", messages[1]);
    }

    #[test]
    fn a_cycle_ends_and_each_reader_is_listed_once() {
        let all = [
            pipeline("p", "a", &["b"], vec![stage("x", Some(&["f"]))], None),
            pipeline("q", "b", &["a"], vec![stage("y", Some(&["f"]))], None),
        ];
        let w = walk(&all, "a-value", &["f".into()]);
        assert!(!w.truncated);
        let names: Vec<&str> = w.hits.iter().map(|h| h.pipeline.name.as_str()).collect();
        assert_eq!(names, vec!["p", "q"]);
    }

    #[test]
    fn a_huge_graph_is_cut_short_and_says_so() {
        let reads: Vec<String> = (0..1000).map(|i| format!("f{i}")).collect();
        let many: Vec<Pipeline> = (0..3000)
            .map(|i| Pipeline {
                processors: vec![PluginRef {
                    reads: Some(reads.clone()),
                    ..stage("s", None)
                }],
                ..pipeline(&format!("p{i}"), "t", &[], vec![], None)
            })
            .collect();
        let fields: Vec<String> = (0..1000).map(|i| format!("g{i}")).collect();
        let w = walk(&many, "t-value", &fields);
        assert!(w.truncated);
        let changes: Vec<Change> = fields.iter().map(|f| removed(f)).collect();
        let messages = guard_messages(&many, "t-value", &changes);
        assert!(
            messages.last().is_some_and(|m| m.contains("too large")),
            "{messages:?}"
        );
    }

    mod props {
        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::*;

        const TOPICS: [&str; 4] = ["a", "b", "c", "d"];
        const FIELDS: [&str; 3] = ["f", "g", "h"];

        /// A pipeline over a few topics and fields: any shape, cycles included.
        /// Source topic, sink topics, each stage's reads, passes (indices into the lists).
        type Shape = (
            usize,
            Vec<usize>,
            Vec<Option<Vec<usize>>>,
            Option<Vec<usize>>,
        );

        fn arb_pipeline() -> impl Strategy<Value = Shape> {
            (
                0..TOPICS.len(),
                prop::collection::vec(0..TOPICS.len(), 0..3),
                prop::collection::vec(
                    prop::option::of(prop::collection::vec(0..FIELDS.len(), 0..3)),
                    0..3,
                ),
                prop::option::of(prop::collection::vec(0..FIELDS.len(), 0..3)),
            )
        }

        proptest! {
            /// The walk finds exactly the stages a plain fixed point finds: those reading the
            /// field (or every field) in a pipeline that reads a subject the field reaches.
            #[test]
            fn the_walk_finds_what_a_fixed_point_finds(
                shapes in prop::collection::vec(arb_pipeline(), 0..12),
                start in 0..TOPICS.len(),
                field in 0..FIELDS.len(),
            ) {
                let names = |list: &[usize], from: &[&str]| -> Vec<String> {
                    list.iter().map(|&i| from[i].to_string()).collect()
                };
                let all: Vec<Pipeline> = shapes
                    .iter()
                    .enumerate()
                    .map(|(n, (from, to, stages, passes))| {
                        let to: Vec<&str> = to.iter().map(|&t| TOPICS[t]).collect();
                        let stages = stages
                            .iter()
                            .map(|r| PluginRef {
                                reads: r.as_ref().map(|r| names(r, &FIELDS)),
                                ..stage("s", None)
                            })
                            .collect();
                        let mut p = pipeline(&format!("p{n}"), TOPICS[from.to_owned()], &to, stages, None);
                        p.passes = passes.as_ref().map(|l| names(l, &FIELDS));
                        p
                    })
                    .collect();
                let f = FIELDS[field].to_string();
                let subject = format!("{}-value", TOPICS[start]);
                // Subjects the field reaches, by a fixed point over every pipeline.
                let mut reach = BTreeSet::from([subject.clone()]);
                loop {
                    let before = reach.len();
                    for p in &all {
                        let reads = p.sources.iter().any(|s| reach.contains(&s.subject()));
                        let passes = p.passes.as_ref().is_none_or(|l| l.contains(&f));
                        if reads && passes {
                            reach.extend(p.sinks.iter().map(|s| s.subject()));
                        }
                    }
                    if reach.len() == before {
                        break;
                    }
                }
                let mut expected = BTreeSet::new();
                for p in &all {
                    if p.sources.iter().any(|s| reach.contains(&s.subject())) {
                        for (i, st) in p.processors.iter().enumerate() {
                            if st.reads.as_ref().is_none_or(|r| r.contains(&f)) {
                                expected.insert((p.name.clone(), i + 1));
                            }
                        }
                    }
                }
                let w = walk(&all, &subject, std::slice::from_ref(&f));
                prop_assert!(!w.truncated);
                let found: Vec<(String, usize)> =
                    w.hits.iter().map(|h| (h.pipeline.name.clone(), h.position)).collect();
                let unique: BTreeSet<(String, usize)> = found.iter().cloned().collect();
                prop_assert_eq!(unique.len(), found.len(), "a reader listed twice");
                prop_assert_eq!(unique, expected);
                for h in &w.hits {
                    prop_assert_eq!(h.via.is_empty(), format!("{}-value", h.topic) == subject);
                }
            }
        }
    }
}
