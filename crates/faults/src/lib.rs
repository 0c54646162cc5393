//! One fault plan for both runtimes.
//!
//! Start here: [`FaultSpec`] is a fault as a configuration writes it
//! ([`spec`] documents the file format), [`validate`] checks a list of them
//! against a run, and [`FaultPlan`] makes every decision they imply: whether
//! a message is lost, how much later it arrives, until when a partition holds
//! it, when a machine crashes, restarts, pauses or has its clock stepped. The
//! simulator and the real runtime both consult it, so a fault means the same
//! in both; the same seed gives the same decisions for the same sequence of
//! sends.
//!
//! ```
//! use clocklab_faults::{Fate, FaultPlan, FaultSpec, LossCause};
//!
//! let faults = vec![FaultSpec::Loss { start: 0.0, end: None, links: Some(vec![[1, 2]]), probability: 1.0 }];
//! clocklab_faults::validate(&faults, 3, 60.0).unwrap();
//! let mut plan = FaultPlan::new(&faults, 42, 60_000_000);
//! assert!(matches!(plan.on_send(1_000, 1, 2), Fate::Lost { cause: LossCause::Loss, .. }));
//! assert_eq!(plan.on_send(1_000, 2, 1), Fate::UNTOUCHED);
//! ```

pub mod generate;
pub mod plan;
pub mod spec;

pub use plan::{
    Fate, FaultPlan, FaultWindow, LossCause, MachineFault, largest_reading, physical_clock_at, physical_reading,
};
pub use spec::{DelaySpec, Direction, FaultError, FaultSpec, PartitionMode, RestartClock, validate};
