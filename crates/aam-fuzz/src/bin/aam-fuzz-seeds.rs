//! Writes the seed corpora: `aam-fuzz-seeds DIR` creates `DIR/<target>/<seed>` for every
//! target (see `aam_fuzz::seeds`).

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: aam-fuzz-seeds DIR (writes DIR/<target>/<seed> for every fuzz target)");
        std::process::exit(2);
    };
    for (name, _) in aam_fuzz::TARGETS {
        let target_dir = dir.join(name);
        if let Err(e) = std::fs::create_dir_all(&target_dir) {
            eprintln!("cannot create {}: {e}", target_dir.display());
            std::process::exit(1);
        }
        let seeds = aam_fuzz::seeds::seeds(name);
        for (seed, bytes) in &seeds {
            let path = target_dir.join(seed);
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        println!("{name}: {} seeds in {}", seeds.len(), target_dir.display());
    }
}
