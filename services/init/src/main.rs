//! init: the first process.
//!
//! The kernel starts it with the root resource and the boot modules. It
//! reads the manifest, starts the programs marked `start` (a resilient
//! service as its companion, `NAME-companion`), and then serves
//! as supervisor (it notices every child's end and restarts the ones marked
//! `restart`) and as the directory every program reaches through its
//! session (see `libos::directory`). A power-off waits for every resilient
//! service's final checkpoint (see `shutdown`).
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod children;
mod pci;
mod server;
mod shutdown;

use alloc::string::String;
use alloc::vec::Vec;
use children::{Children, Launch};
use libos::channel::{select, ChannelError, Waitable};

libos::main!(main);

fn main() -> Result<(), String> {
    let boot = boot::load()?;
    log::info!("{} programs in the image, {} in the manifest", boot.modules.len() - 1, boot.manifest.programs.len());
    let mut children = Children::new().map_err(|e| alloc::format!("cannot create the exit event: {e}"))?;
    let pci = match pci::Pci::scan(boot.root) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("cannot scan the PCI bus: {e}");
            None
        }
    };
    let mut directory = server::Directory::new(pci);
    for p in boot.manifest.programs.iter().filter(|p| p.start) {
        // A resilient service starts as its companion, which starts the
        // service process itself.
        let companion = p.companion();
        let (name, args) = match &companion {
            Some(c) => (c.process.as_str(), c.args.as_str()),
            None => (p.name.as_str(), p.args.as_str()),
        };
        let launch = Launch {
            program: &p.name,
            name,
            args,
            suspended: false,
            extra: Vec::new(),
            restart: p.restart,
            boot: true,
            spawned_by: None,
        };
        if let Err((_, m)) = children.spawn(&boot, launch) {
            log::error!("{m}");
        }
    }
    loop {
        let pids: Vec<u32> = children.list.iter().filter(|c| c.session.is_some()).map(|c| c.pid).collect();
        let ready = {
            let mut items: Vec<&dyn Waitable> = Vec::with_capacity(pids.len() + 1);
            items.push(&children.exit);
            items.extend(children.list.iter().filter_map(|c| c.session.as_ref()).map(|s| s as &dyn Waitable));
            // During a power-off, also the companions' final checkpoints.
            let mut timeout = directory.shutdown().map(|s| {
                items.extend(s.waitables());
                s.timeout()
            });
            // Connection requests wait for a busy service: try them again soon.
            if directory.has_queued() {
                timeout = Some(timeout.map_or(server::QUEUED_RETRY, |t| t.min(server::QUEUED_RETRY)));
            }
            match select(&items, timeout) {
                Ok(i) => Some(i),
                Err(ChannelError::TimedOut) => None,
                Err(e) => {
                    log::error!("select failed: {e}");
                    continue;
                }
            }
        };
        match ready {
            Some(0) => {
                let ended = children.reap(&boot);
                directory.forget(&ended);
            }
            Some(i) if i <= pids.len() => directory.serve(&boot, &mut children, pids[i - 1]),
            _ => {}
        }
        if directory.has_queued() {
            directory.retry_queued(&mut children);
        }
        directory.progress_shutdown(&boot, &mut children);
    }
}
