//! Median pruning (Optuna's `MedianPruner`): after `warmup_epochs`, a running trial whose
//! best value so far is worse than the median of the completed trials' best values up to
//! the same epoch is stopped. Nothing is pruned before `startup_trials` trials completed.

use super::space::{Direction, PrunerKind, PrunerSettings};

/// Best value of `values[..=epoch]` in `direction` (`None` when the trial has no such
/// epoch or no finite value there).
pub fn best_up_to(values: &[f64], epoch: usize, direction: Direction) -> Option<f64> {
    let finite = values.iter().take(epoch + 1).copied().filter(|v| v.is_finite());
    match direction {
        Direction::Minimize => finite.reduce(f64::min),
        Direction::Maximize => finite.reduce(f64::max),
    }
}

/// Median of `values` (mean of the two middle ones for an even count); `None` when empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Whether the running trial with per-epoch values `running` (epoch 0 first) is pruned,
/// given the per-epoch values of the completed trials. Decided at its latest epoch.
pub fn should_prune(
    settings: &PrunerSettings,
    direction: Direction,
    running: &[f64],
    completed: &[&[f64]],
) -> bool {
    if settings.kind == PrunerKind::None
        || completed.len() < settings.startup_trials
        || running.len() <= settings.warmup_epochs
    {
        return false;
    }
    let epoch = running.len() - 1;
    let Some(own) = best_up_to(running, epoch, direction) else {
        // Every value so far is NaN: nothing to compare, and a diverged run is worse
        // than any finished one.
        return !completed.is_empty();
    };
    let others: Vec<f64> = completed
        .iter()
        .filter(|c| c.len() > epoch)
        .filter_map(|c| best_up_to(c, epoch, direction))
        .collect();
    match median(others) {
        None => false,
        Some(m) => match direction {
            Direction::Minimize => own > m,
            Direction::Maximize => own < m,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(startup: usize, warmup: usize) -> PrunerSettings {
        PrunerSettings {
            kind: PrunerKind::Median,
            startup_trials: startup,
            warmup_epochs: warmup,
        }
    }

    #[test]
    fn medians_by_hand() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(best_up_to(&[3.0, 1.0, 2.0], 0, Direction::Minimize), Some(3.0));
        assert_eq!(best_up_to(&[3.0, 1.0, 2.0], 2, Direction::Minimize), Some(1.0));
        assert_eq!(best_up_to(&[0.2, 0.5, 0.4], 2, Direction::Maximize), Some(0.5));
    }

    #[test]
    fn prunes_the_worse_half_after_warm_up() {
        let done: [&[f64]; 3] = [&[1.0, 0.8, 0.7], &[1.2, 0.9, 0.6], &[1.1, 1.0, 0.9]];
        let s = settings(3, 1);
        // Epoch 1: the completed trials' bests are 0.8, 0.9, 1.0 → median 0.9.
        assert!(should_prune(&s, Direction::Minimize, &[1.0, 0.95], &done));
        assert!(!should_prune(&s, Direction::Minimize, &[1.0, 0.85], &done));
        // Its best so far counts, not its latest value: 0.85 at epoch 0 beats 0.9.
        assert!(!should_prune(&s, Direction::Minimize, &[0.85, 0.95], &done));
        // Warm-up epoch 0 is never pruned; nor before 3 trials completed.
        assert!(!should_prune(&s, Direction::Minimize, &[5.0], &done));
        assert!(!should_prune(&s, Direction::Minimize, &[1.0, 0.95], &done[..2]));
        // Maximizing: epoch 1 bests 1.0, 1.2, 1.1 → median 1.1.
        assert!(should_prune(&s, Direction::Maximize, &[1.0, 1.05], &done));
        assert!(!should_prune(&s, Direction::Maximize, &[1.0, 1.15], &done));
        let off = PrunerSettings {
            kind: PrunerKind::None,
            ..s
        };
        assert!(!should_prune(&off, Direction::Minimize, &[9.0, 9.0], &done));
    }
}
