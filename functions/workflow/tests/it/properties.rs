//! Properties over random event sequences.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::Duration;
use common::{actor, events, in_state, now, KINDS};
use proptest::prelude::*;
use reclaim_workflow::{apply, State};
use std::collections::HashSet;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_sequences_keep_the_workflow_invariants(
        steps in prop::collection::vec((0usize..21, 0usize..7, 0i64..(20 * 24 * 60)), 1..60),
        notify in any::<bool>(),
        days in 0u32..20,
        itil in any::<bool>(),
    ) {
        let all = events();
        let mut c = in_state(State::Ready);
        c.version = 0;
        c.rule.notify_user = notify;
        c.rule.days_before_auto_reclamation = days;
        if let Some(u) = c.user.as_mut() { u.itil = itil; }
        let mut history = Vec::new();
        let mut keys = HashSet::new();
        let mut t = now();
        let mut closed_once = false;
        for (e, a, minutes) in steps {
            t += Duration::minutes(minutes);
            let event = &all[e % all.len()];
            let before = c.clone();
            match apply(&c, event, &actor(KINDS[a % KINDS.len()]), t) {
                Ok(tr) => {
                    prop_assert_eq!(tr.candidate.version, before.version + 1);
                    if before.state.is_closed() {
                        prop_assert_eq!(tr.candidate.state, before.state, "a closed candidate never reopens");
                    }
                    for eff in &tr.effects {
                        prop_assert!(keys.insert(eff.key.clone()), "effect key {} repeated", eff.key);
                    }
                    history.push(tr.entry);
                    c = tr.candidate;
                }
                Err(r) => {
                    prop_assert_eq!(&c, &before);
                    prop_assert_eq!(r.state, c.state);
                }
            }
            closed_once |= c.state.is_closed();
            prop_assert!(!closed_once || c.state.is_closed(), "reopened");
            prop_assert_eq!(history.len() as u64, c.version, "one history entry per transition");
        }
        // The history chains: each entry starts where the previous one ended.
        for w in history.windows(2) {
            prop_assert_eq!(w[0].to, w[1].from);
            prop_assert_eq!(w[0].version + 1, w[1].version);
        }
    }
}
