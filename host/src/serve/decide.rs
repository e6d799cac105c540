//! The policy of automatic upgrades, pure so it is tested alone: what runs and what the
//! registry resolves to (pins), what differs (changes), and whether to try an upgrade, leave
//! a refused one alone, or do nothing.

/// What runs, or what the registry resolves to: each stage's `name@version` and the source's
/// reader schema id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Pins {
    pub stages: Vec<String>,
    pub reader: Option<u32>,
}

impl std::fmt::Display for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.stages.join(", "))?;
        if let Some(id) = self.reader {
            if !self.stages.is_empty() {
                write!(f, "; ")?;
            }
            write!(f, "reader schema id {id}")?;
        }
        Ok(())
    }
}

/// One difference between what runs and what the registry resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    /// Stage `stage` (0-based) moves to another version.
    Plugin {
        stage: usize,
        from: String,
        to: String,
        why: String,
    },
    /// The source's subject has a new latest schema.
    Schema {
        subject: String,
        from: Option<u32>,
        to: u32,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Plugin {
                stage,
                from,
                to,
                why,
            } => write!(f, "stage {}: {from} → {to} ({why})", stage + 1),
            Change::Schema { subject, from, to } => match from {
                Some(from) => write!(f, "source subject {subject}: schema id {from} → {to}"),
                None => write!(f, "source subject {subject}: schema id {to}"),
            },
        }
    }
}

/// What the registry resolves a pipeline to, with why each stage moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Target {
    pub pins: Pins,
    /// Per stage: why its version is what it is (`newest match of ^1`, `1.2.0 was yanked`).
    pub why: Vec<String>,
    /// The source subject followed, if any.
    pub subject: Option<String>,
}

/// What to do about one pipeline after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// The registry resolves to what runs.
    Current,
    /// The registry resolves to what was already refused: not tried again until it changes.
    StillBlocked,
    /// Build and swap in these changes.
    Upgrade(Vec<Change>),
}

/// Compares what runs with what the registry resolves to. Pure: the whole policy of when an
/// upgrade is attempted.
pub(super) fn decide(running: &Pins, target: &Target, blocked: Option<&Pins>) -> Decision {
    if *running == target.pins {
        return Decision::Current;
    }
    if blocked == Some(&target.pins) {
        return Decision::StillBlocked;
    }
    let mut changes = Vec::new();
    for (stage, (from, to)) in running.stages.iter().zip(&target.pins.stages).enumerate() {
        if from != to {
            changes.push(Change::Plugin {
                stage,
                from: from.clone(),
                to: to.clone(),
                why: target.why.get(stage).cloned().unwrap_or_default(),
            });
        }
    }
    if let Some(to) = target.pins.reader
        && running.reader != Some(to)
    {
        changes.push(Change::Schema {
            subject: target.subject.clone().unwrap_or_default(),
            from: running.reader,
            to,
        });
    }
    Decision::Upgrade(changes)
}

pub(super) fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(stages: &[&str], reader: Option<u32>) -> Pins {
        Pins {
            stages: stages.iter().map(|s| s.to_string()).collect(),
            reader,
        }
    }

    fn target(stages: &[&str], reader: Option<u32>) -> Target {
        Target {
            pins: pins(stages, reader),
            why: vec!["newest match of ^1".into(); stages.len()],
            subject: Some("orders-value".into()),
        }
    }

    #[test]
    fn what_runs_is_current() {
        let running = pins(&["filter@0.1.0", "mask@1.1.0"], Some(3));
        let t = target(&["filter@0.1.0", "mask@1.1.0"], Some(3));
        assert_eq!(decide(&running, &t, None), Decision::Current);
        // Even when something else was blocked before: the registry moved back.
        let blocked = pins(&["filter@0.1.0", "mask@1.1.0"], Some(4));
        assert_eq!(decide(&running, &t, Some(&blocked)), Decision::Current);
    }

    #[test]
    fn a_new_version_and_a_new_schema_are_one_upgrade_naming_both() {
        let running = pins(&["filter@0.1.0", "mask@1.1.0"], Some(3));
        let t = target(&["filter@0.1.0", "mask@1.2.0"], Some(5));
        let Decision::Upgrade(changes) = decide(&running, &t, None) else {
            panic!("an upgrade");
        };
        assert_eq!(
            describe(&changes),
            "stage 2: mask@1.1.0 → mask@1.2.0 (newest match of ^1); source subject orders-value: schema id 3 → 5"
        );
    }

    #[test]
    fn a_refused_target_is_not_tried_again_until_the_registry_changes() {
        let running = pins(&["filter@0.1.0"], Some(3));
        let refused = target(&["filter@0.1.0"], Some(5));
        assert_eq!(
            decide(&running, &refused, Some(&refused.pins)),
            Decision::StillBlocked
        );
        // A newer schema (or plugin) is a new target: tried.
        let newer = target(&["filter@0.1.0"], Some(6));
        assert!(matches!(
            decide(&running, &newer, Some(&refused.pins)),
            Decision::Upgrade(_)
        ));
    }

    #[test]
    fn moving_back_from_a_yanked_version_is_an_upgrade_too() {
        let running = pins(&["mask@1.2.0"], None);
        let mut t = target(&["mask@1.1.0"], None);
        t.why = vec!["mask@1.2.0 was yanked; newest match of ^1".into()];
        let Decision::Upgrade(changes) = decide(&running, &t, None) else {
            panic!("an upgrade");
        };
        assert_eq!(
            changes,
            [Change::Plugin {
                stage: 0,
                from: "mask@1.2.0".into(),
                to: "mask@1.1.0".into(),
                why: "mask@1.2.0 was yanked; newest match of ^1".into(),
            }]
        );
    }

    #[test]
    fn pins_read_as_a_line() {
        assert_eq!(
            pins(&["filter@0.1.0", "mask@1.1.0"], Some(7)).to_string(),
            "filter@0.1.0, mask@1.1.0; reader schema id 7"
        );
        assert_eq!(pins(&[], Some(7)).to_string(), "reader schema id 7");
    }
}
