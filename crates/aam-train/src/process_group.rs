//! The rank and world size of one process of a training group across machines
//! (`docs/multi-device.md`, "Several machines"). The MPI launcher (`mpirun`, `srun`) decides
//! them; `torchrun`'s names (`--world-size`/`--rank`, `WORLD_SIZE`/`RANK`) and, in a task
//! `srun` started, SLURM's (`SLURM_NTASKS`/`SLURM_PROCID`) must agree with it.

/// One process's place in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGroup {
    /// This process's rank, `0..world_size`; rank 0 writes checkpoints, metrics and
    /// tracking.
    pub rank: u32,
    /// How many processes train together (at least 1).
    pub world_size: u32,
}

/// A group as the command line or the environment states it, with where each value came
/// from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedGroup {
    /// The stated group.
    pub group: ProcessGroup,
    /// Where the world size was read: `--world-size`, `WORLD_SIZE` or `SLURM_NTASKS`.
    pub world_size_from: &'static str,
    /// Where the rank was read: `--rank`, `RANK` or `SLURM_PROCID`.
    pub rank_from: &'static str,
}

/// The group stated by the flags `world_size`/`rank` or else the environment (`env`
/// looks a variable up), read as pairs so that a world size and a rank never come from two
/// sources: the flags if either is given, else `WORLD_SIZE`/`RANK` if either is set, else
/// SLURM's `SLURM_NTASKS`/`SLURM_PROCID`, but only in a task that `srun` started
/// (`SLURM_STEP_ID` set) and that no `mpirun` started (`OMPI_COMM_WORLD_SIZE` unset): a
/// batch script sees the allocation's task count, and `mpirun`'s ranks inherit its
/// daemons' values, neither of which describes the process group. `None` when nothing
/// states one.
///
/// Errors (naming the flag or variable): a value that is not a whole number; a world size
/// of 0; a rank not below the world size; a world size above 1 with no rank, or a rank
/// with no world size.
pub fn claimed_group(
    world_size: Option<u32>,
    rank: Option<u32>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ClaimedGroup>, String> {
    type Value = Option<(u32, &'static str)>;
    let read = |name: &'static str, meaning: &str| -> Result<Value, String> {
        let Some(text) = env(name) else {
            return Ok(None);
        };
        match text.trim().parse::<u32>() {
            Ok(v) => Ok(Some((v, name))),
            Err(_) => Err(format!(
                "{name}={text:?} is not a whole number; set it to {meaning} or unset it"
            )),
        }
    };
    const WORLD: &str = "the number of processes in the group";
    const RANK: &str = "this process's rank in the group";
    let srun_task = env("SLURM_STEP_ID").is_some() && env("OMPI_COMM_WORLD_SIZE").is_none();
    let (world, rank): (Value, Value) = if world_size.is_some() || rank.is_some() {
        (
            world_size.map(|w| (w, "--world-size")),
            rank.map(|r| (r, "--rank")),
        )
    } else if env("WORLD_SIZE").is_some() || env("RANK").is_some() {
        (read("WORLD_SIZE", WORLD)?, read("RANK", RANK)?)
    } else if srun_task {
        (read("SLURM_NTASKS", WORLD)?, read("SLURM_PROCID", RANK)?)
    } else {
        (None, None)
    };
    let (world, rank) = match (world, rank) {
        (None, None) => return Ok(None),
        (Some((w, from)), None) if w > 1 => {
            return Err(format!(
                "{from} is {w} but no rank is given: pass --rank (or set RANK) for each process"
            ))
        }
        (Some(w), None) => (w, (0, "--rank")),
        (None, Some((_, from))) => {
            return Err(format!(
                "{from} is given without a world size: pass --world-size (or set WORLD_SIZE)"
            ))
        }
        (Some(w), Some(r)) => (w, r),
    };
    if world.0 == 0 {
        return Err(format!(
            "{} is 0: a group has at least one process",
            world.1
        ));
    }
    if rank.0 >= world.0 {
        return Err(format!(
            "{} {} is not below {} {}: ranks run from 0 to the world size - 1",
            rank.1, rank.0, world.1, world.0
        ));
    }
    Ok(Some(ClaimedGroup {
        group: ProcessGroup {
            rank: rank.0,
            world_size: world.0,
        },
        world_size_from: world.1,
        rank_from: rank.1,
    }))
}

/// The group this process trains in: `launcher`'s (what MPI reports; `None` when the
/// process was not started by an MPI launcher), checked against `claimed`.
///
/// Errors: the claimed world size or rank differs from the launcher's (both named, and
/// where the claim came from); a group of more than one process is claimed but no MPI
/// launcher started this one.
pub fn resolve_group(
    claimed: Option<&ClaimedGroup>,
    launcher: Option<ProcessGroup>,
) -> Result<ProcessGroup, String> {
    let single = ProcessGroup {
        rank: 0,
        world_size: 1,
    };
    match (claimed, launcher) {
        (None, None) => Ok(single),
        (None, Some(l)) => Ok(l),
        (Some(c), None) if c.group == single => Ok(single),
        (Some(c), None) => Err(format!(
            "{} {} asks for a group of processes, but this process was not started by an MPI launcher: start every process with `mpirun -np {} aam …` (or `srun` under SLURM) from a build with the `mpi` feature",
            c.world_size_from, c.group.world_size, c.group.world_size
        )),
        (Some(c), Some(l)) => {
            if c.group.world_size != l.world_size {
                Err(format!(
                    "{} {} differs from the launcher's {} processes: drop {} or make it agree",
                    c.world_size_from, c.group.world_size, l.world_size, c.world_size_from
                ))
            } else if c.group.rank != l.rank {
                Err(format!(
                    "{} {} differs from the launcher's rank {} for this process: drop {} or make it agree",
                    c.rank_from, c.group.rank, l.rank, c.rank_from
                ))
            } else {
                Ok(l)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn group(rank: u32, world_size: u32) -> ProcessGroup {
        ProcessGroup { rank, world_size }
    }

    #[test]
    fn flags_then_torchrun_then_slurm_as_pairs() {
        let none = env(&[]);
        assert_eq!(claimed_group(None, None, &none).unwrap(), None);
        let srun = [
            ("SLURM_STEP_ID", "0"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_PROCID", "5"),
        ];
        let all_vars = [
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            srun[0],
            srun[1],
            srun[2],
        ];
        let all = env(&all_vars);
        let c = claimed_group(None, None, &all).unwrap().unwrap();
        assert_eq!(
            (c.group, c.world_size_from, c.rank_from),
            (group(3, 4), "WORLD_SIZE", "RANK")
        );
        let c = claimed_group(Some(2), Some(1), &all).unwrap().unwrap();
        assert_eq!(
            (c.group, c.world_size_from, c.rank_from),
            (group(1, 2), "--world-size", "--rank")
        );
        let c = claimed_group(None, None, &env(&srun)).unwrap().unwrap();
        assert_eq!((c.group, c.rank_from), (group(5, 8), "SLURM_PROCID"));
        // A world of one needs no rank.
        let c = claimed_group(Some(1), None, &none).unwrap().unwrap();
        assert_eq!(c.group, group(0, 1));
        // A pair is never completed from the next source.
        let err =
            claimed_group(None, None, &env(&[("WORLD_SIZE", "8"), srun[0], srun[2]])).unwrap_err();
        assert!(err.contains("WORLD_SIZE is 8 but no rank"), "{err}");
        let err = claimed_group(Some(4), None, &all).unwrap_err();
        assert!(err.contains("--world-size is 4 but no rank"), "{err}");
    }

    /// A batch script (no step) sees the allocation, and mpirun's ranks inherit their
    /// daemon's step: neither is a claim about the group.
    #[test]
    fn slurm_values_outside_an_srun_task_are_not_claims() {
        let batch = env(&[("SLURM_NTASKS", "4"), ("SLURM_PROCID", "0")]);
        assert_eq!(claimed_group(None, None, &batch).unwrap(), None);
        let under_mpirun = env(&[
            ("SLURM_STEP_ID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "1"),
            ("OMPI_COMM_WORLD_SIZE", "8"),
        ]);
        assert_eq!(claimed_group(None, None, &under_mpirun).unwrap(), None);
    }

    #[test]
    fn malformed_claims_are_refused_by_name() {
        let cases: [(Option<u32>, Option<u32>, &[(&str, &str)], &str); 6] = [
            (
                None,
                None,
                &[("WORLD_SIZE", "two"), ("RANK", "0")],
                "WORLD_SIZE=\"two\" is not a whole number",
            ),
            (
                None,
                None,
                &[("WORLD_SIZE", "2"), ("RANK", "-1")],
                "RANK=\"-1\" is not a whole number",
            ),
            (Some(2), None, &[], "--world-size is 2 but no rank"),
            (None, Some(1), &[], "--rank is given without a world size"),
            (Some(0), Some(0), &[], "--world-size is 0"),
            (
                None,
                None,
                &[
                    ("SLURM_STEP_ID", "1"),
                    ("SLURM_NTASKS", "2"),
                    ("SLURM_PROCID", "2"),
                ],
                "SLURM_PROCID 2 is not below SLURM_NTASKS 2",
            ),
        ];
        for (w, r, vars, expected) in cases {
            let err = claimed_group(w, r, &env(vars)).unwrap_err();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn the_launcher_decides_and_claims_must_agree() {
        assert_eq!(resolve_group(None, None).unwrap(), group(0, 1));
        assert_eq!(resolve_group(None, Some(group(1, 2))).unwrap(), group(1, 2));
        let claim = |rank, world_size| ClaimedGroup {
            group: group(rank, world_size),
            world_size_from: "WORLD_SIZE",
            rank_from: "RANK",
        };
        assert_eq!(
            resolve_group(Some(&claim(1, 2)), Some(group(1, 2))).unwrap(),
            group(1, 2)
        );
        assert_eq!(
            resolve_group(Some(&claim(0, 1)), None).unwrap(),
            group(0, 1)
        );
        let err = resolve_group(Some(&claim(1, 4)), Some(group(1, 2))).unwrap_err();
        assert!(
            err.contains("WORLD_SIZE 4 differs from the launcher's 2 processes"),
            "{err}"
        );
        let err = resolve_group(Some(&claim(0, 2)), Some(group(1, 2))).unwrap_err();
        assert!(
            err.contains("RANK 0 differs from the launcher's rank 1"),
            "{err}"
        );
        let err = resolve_group(Some(&claim(0, 2)), None).unwrap_err();
        assert!(err.contains("mpirun -np 2"), "{err}");
    }
}
