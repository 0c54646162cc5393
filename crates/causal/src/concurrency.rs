//! How much of a run is concurrent, and how much of that Lamport's clock
//! orders anyway.
//!
//! For two ticks `a` and `b` on different machines, they are concurrent when
//! neither `V(a) < V(b)` nor `V(b) < V(a)`. Lamport's clock still orders
//! every such pair whose values differ (`L(a) < L(b)` or the other way): that
//! is Lamport's "false ordering", an order the clock shows and causality does
//! not. [`Concurrency`] counts both over the pairs of a run's ticks.
//!
//! Pairs grow with the square of the ticks, so the count is taken over a
//! uniform sample of ticks (reservoir sampling with a seeded generator, so
//! the same run gives the same figures): exact for a run of up to
//! [`Concurrency::sample_size`] ticks (every 60 s run of the classic suite),
//! an unbiased estimate beyond, with its sample size reported.

use clocklab_model::MachineId;
use clocklab_model::seed::{ModelRng, rng_from_seed};
use clocklab_model::vector::compare;
use rand::RngExt;

/// One sampled tick.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sampled {
    machine: MachineId,
    lamport: u64,
    vector: Vec<u64>,
}

/// The pair counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairCounts {
    /// Ticks seen.
    pub ticks: u64,
    /// Ticks sampled.
    pub sampled: u64,
    /// Pairs of sampled ticks on different machines.
    pub pairs: u64,
    /// Of those, the concurrent ones.
    pub concurrent: u64,
    /// Of the concurrent ones, those whose Lamport clocks differ.
    pub falsely_ordered: u64,
}

impl PairCounts {
    /// Whether every tick was sampled, so the counts are exact.
    pub fn exact(&self) -> bool {
        self.sampled == self.ticks
    }

    /// Concurrent pairs as a share of all pairs on different machines.
    pub fn concurrent_share(&self) -> f64 {
        if self.pairs == 0 { 0.0 } else { self.concurrent as f64 / self.pairs as f64 }
    }

    /// Falsely ordered pairs as a share of all pairs on different machines.
    pub fn false_ordering_share(&self) -> f64 {
        if self.pairs == 0 { 0.0 } else { self.falsely_ordered as f64 / self.pairs as f64 }
    }

    /// Falsely ordered pairs as a share of the concurrent pairs.
    pub fn false_ordering_of_concurrent(&self) -> f64 {
        if self.concurrent == 0 { 0.0 } else { self.falsely_ordered as f64 / self.concurrent as f64 }
    }
}

/// See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Concurrency {
    capacity: usize,
    sample: Vec<Sampled>,
    seen: u64,
    rng: ModelRng,
    /// For vectors the vector-clock rule made: the machine of each component.
    owners: Option<Vec<MachineId>>,
}

impl Concurrency {
    /// The number of ticks sampled in a run of `n_machines`: 4,096 for up to
    /// eight machines, fewer beyond, so that comparing the sample's pairs
    /// stays well under a second.
    pub fn sample_size(n_machines: usize) -> usize {
        if n_machines <= 8 { 4_096 } else { ((4_096.0 * (8.0 / n_machines as f64).sqrt()) as usize).max(512) }
    }

    /// A counter for a run of `n_machines`, sampling with a generator seeded by `seed`.
    pub fn new(n_machines: usize, seed: u64) -> Concurrency {
        let capacity = Concurrency::sample_size(n_machines);
        Concurrency {
            capacity,
            sample: Vec::with_capacity(capacity.min(1 << 12)),
            seen: 0,
            rng: rng_from_seed(seed),
            owners: None,
        }
    }

    /// A counter for vectors that the vector-clock rule made (a
    /// [`VectorReplay`](crate::VectorReplay)'s), whose component `k` belongs
    /// to `machines[k]`. For such vectors, a tick `a` of machine `i` happened
    /// before a tick `b` of another machine exactly when `b`'s component `i`
    /// has reached `a`'s, so a pair is compared on its two machines'
    /// components only, with the counts that comparing every component
    /// gives. Logged vectors may break the rule: count those with [`Concurrency::new`].
    pub fn replayed(machines: &[MachineId], seed: u64) -> Concurrency {
        Concurrency { owners: Some(machines.to_vec()), ..Concurrency::new(machines.len(), seed) }
    }

    /// Takes one tick: its machine, Lamport clock and vector clock.
    pub fn add(&mut self, machine: MachineId, lamport: u64, vector: &[u64]) {
        let item = || Sampled { machine, lamport, vector: vector.to_vec() };
        if self.sample.len() < self.capacity {
            self.sample.push(item());
        } else {
            let slot = self.rng.random_range(0..=self.seen);
            if let Ok(slot) = usize::try_from(slot)
                && slot < self.capacity
            {
                self.sample[slot] = item();
            }
        }
        self.seen += 1;
    }

    /// The counts over the sample's pairs.
    pub fn counts(&self) -> PairCounts {
        let mut counts = PairCounts { ticks: self.seen, sampled: self.sample.len() as u64, ..PairCounts::default() };
        let dims = self.sample.first().map_or(0, |sampled| sampled.vector.len());
        if self.sample.iter().all(|sampled| sampled.vector.len() == dims) {
            self.count_by_columns(dims, &mut counts);
        } else {
            // Vectors of different lengths (a damaged log).
            self.count_pairwise(&mut counts);
        }
        counts
    }

    /// The pair counts, one pair at a time, with [`compare`] (over the
    /// shorter vector when their lengths differ).
    fn count_pairwise(&self, counts: &mut PairCounts) {
        for (idx, a) in self.sample.iter().enumerate() {
            for b in &self.sample[idx + 1..] {
                if a.machine == b.machine {
                    continue;
                }
                counts.pairs += 1;
                if compare(&a.vector, &b.vector).is_none() {
                    counts.concurrent += 1;
                    counts.falsely_ordered += u64::from(a.lamport != b.lamport);
                }
            }
        }
    }

    /// The pair counts when every vector has `dims` components: the same
    /// comparisons as [`compare`], made one component at a time over the
    /// components of many ticks laid out in a column, which the compiler
    /// turns into vector instructions (millions of pairs per run made the
    /// pair-by-pair loop a fifth of an analysis' time). The ticks are taken
    /// machine by machine, so that a tick is compared with the ticks of the
    /// machines after its own only: each pair on different machines once,
    /// and no pair on the same machine.
    ///
    /// Values that fit an `i32` (all but the longest runs') are compared as
    /// such: the baseline x86-64 instruction set compares 32-bit integers in
    /// vector registers, and not 64-bit ones.
    fn count_by_columns(&self, dims: usize, counts: &mut PairCounts) {
        let fits = |value: u64| i32::try_from(value).is_ok();
        if self.sample.iter().all(|sampled| fits(sampled.lamport) && sampled.vector.iter().all(|&v| fits(v))) {
            self.count_columns(dims, counts, |value| i32::try_from(value).expect("checked to fit"));
        } else {
            self.count_columns(dims, counts, |value| value);
        }
    }

    /// [`Concurrency::count_by_columns`] with values as `T`, which must
    /// order them as `u64` does.
    fn count_columns<T: Copy + Default + PartialOrd>(
        &self,
        dims: usize,
        counts: &mut PairCounts,
        value_of: impl Fn(u64) -> T,
    ) {
        // 32-bit flags, as wide as the values compared, so that a vector
        // register holds as many of either.
        const LESS: u32 = 1;
        const GREATER: u32 = 2;
        let mut order: Vec<&Sampled> = self.sample.iter().collect();
        order.sort_by_key(|sampled| sampled.machine);
        let n = order.len();
        let mut columns = vec![T::default(); dims * n];
        for (idx, sampled) in order.iter().enumerate() {
            for (dim, &value) in sampled.vector.iter().enumerate() {
                columns[dim * n + idx] = value_of(value);
            }
        }
        let lamports: Vec<T> = order.iter().map(|sampled| value_of(sampled.lamport)).collect();
        // Each tick's own component, when the vectors are the rule's.
        let own: Option<Vec<usize>> =
            self.owners.as_ref().filter(|owners| owners.len() == dims).and_then(|owners| {
                order.iter().map(|sampled| owners.iter().position(|&m| m == sampled.machine)).collect()
            });
        if let Some(own) = own {
            Self::count_own_components(&order, &own, &columns, &lamports, counts, value_of);
            return;
        }
        // For each tick of a later machine: whether one of its components is
        // above a's (`LESS`: a's is less) and one below (`GREATER`); both
        // make the pair concurrent.
        let mut flags = vec![0u32; n];
        let mut group_end = 0;
        for (idx, a) in order.iter().enumerate() {
            if idx == group_end {
                group_end += order[idx..].iter().take_while(|sampled| sampled.machine == a.machine).count();
            }
            let later = group_end..n;
            let flags = &mut flags[later.clone()];
            let lamport = value_of(a.lamport);
            // At most `n` each: 32-bit sums, four to a vector register.
            let (mut concurrent, mut falsely_ordered) = (0u32, 0u32);
            // Without a component, no pair is concurrent.
            if let Some((&last, firsts)) = a.vector.split_last() {
                // The first component sets the flags, the others add to them;
                // the last one's flags are counted as they are made.
                let keep = |dim: usize| if dim == 0 { 0 } else { LESS | GREATER };
                for (dim, &mine) in firsts.iter().enumerate() {
                    let mine = value_of(mine);
                    let column = &columns[dim * n..][later.clone()];
                    for (flag, &theirs) in flags.iter_mut().zip(column) {
                        *flag = (*flag & keep(dim))
                            | (u32::from(mine < theirs) * LESS)
                            | (u32::from(mine > theirs) * GREATER);
                    }
                }
                let (dim, mine) = (firsts.len(), value_of(last));
                let column = &columns[dim * n..][later.clone()];
                for ((&flag, &theirs), &their_lamport) in flags.iter().zip(column).zip(&lamports[later]) {
                    let flag =
                        (flag & keep(dim)) | (u32::from(mine < theirs) * LESS) | (u32::from(mine > theirs) * GREATER);
                    let both = u32::from(flag == LESS | GREATER);
                    concurrent += both;
                    falsely_ordered += both & u32::from(their_lamport != lamport);
                }
            }
            counts.pairs += flags.len() as u64;
            counts.concurrent += u64::from(concurrent);
            counts.falsely_ordered += u64::from(falsely_ordered);
        }
    }

    /// [`Concurrency::count_columns`] for the rule's vectors (see
    /// [`Concurrency::replayed`]): `own[k]` is the own component of the
    /// `k`-th tick of `order`. A tick `a` of machine `i` and a tick `b` of
    /// machine `j` are concurrent when `b`'s component `i` is below `a`'s
    /// (`b` has not seen `a`) and `a`'s component `j` below `b`'s.
    fn count_own_components<T: Copy + PartialOrd>(
        order: &[&Sampled],
        own: &[usize],
        columns: &[T],
        lamports: &[T],
        counts: &mut PairCounts,
        value_of: impl Fn(u64) -> T,
    ) {
        let n = order.len();
        // Each machine's ticks, as ranges of `order`.
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        while start < n {
            let end =
                start + order[start..].iter().take_while(|sampled| sampled.machine == order[start].machine).count();
            groups.push(start..end);
            start = end;
        }
        for (group, ticks) in groups.iter().enumerate() {
            let i = own[ticks.start];
            for a in &order[ticks.clone()] {
                let (mine_i, lamport) = (value_of(a.vector[i]), value_of(a.lamport));
                // At most `n` each: 32-bit sums.
                let (mut concurrent, mut falsely_ordered) = (0u32, 0u32);
                for later in &groups[group + 1..] {
                    let j = own[later.start];
                    let mine_j = value_of(a.vector[j]);
                    let theirs_i = &columns[i * n..][later.clone()];
                    let theirs_j = &columns[j * n..][later.clone()];
                    for ((&their_i, &their_j), &their_lamport) in
                        theirs_i.iter().zip(theirs_j).zip(&lamports[later.clone()])
                    {
                        let both = u32::from(their_i < mine_i) & u32::from(mine_j < their_j);
                        concurrent += both;
                        falsely_ordered += both & u32::from(their_lamport != lamport);
                    }
                }
                counts.pairs += (n - ticks.end) as u64;
                counts.concurrent += u64::from(concurrent);
                counts.falsely_ordered += u64::from(falsely_ordered);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The column-wise count is the pair-by-pair count, for small
        /// components (compared as `i32`) and large ones (as `u64`).
        #[test]
        fn columns_count_what_pairs_count(
            ticks in proptest::collection::vec((1u32..4, 0u64..6, proptest::collection::vec(0u64..4, 3)), 0..60),
            large in any::<bool>(),
        ) {
            let mut concurrency = Concurrency::new(3, 1);
            let offset = if large { u64::from(u32::MAX) } else { 0 };
            for (machine, lamport, vector) in &ticks {
                let vector: Vec<u64> = vector.iter().map(|v| v + offset).collect();
                concurrency.add(*machine, lamport + offset, &vector);
            }
            let mut pairwise = PairCounts { ticks: concurrency.seen, sampled: concurrency.sample.len() as u64, ..PairCounts::default() };
            concurrency.count_pairwise(&mut pairwise);
            prop_assert_eq!(concurrency.counts(), pairwise);
        }
    }

    /// The ticks of a run of three machines under the vector-clock and
    /// Lamport rules, each step `(machine, action)`: 0 an internal event,
    /// 1 or 2 a send to the next machine or the one after, 3 the receive of
    /// the oldest message to it (an internal event when there is none).
    fn clock_made_ticks(steps: &[(usize, u8)], offset: u64) -> Vec<(MachineId, u64, Vec<u64>)> {
        let mut vectors = vec![vec![offset; 3]; 3];
        let mut lamports = [offset; 3];
        let mut wire: Vec<std::collections::VecDeque<(u64, Vec<u64>)>> = vec![Default::default(); 3];
        let mut ticks = Vec::new();
        for &(m, action) in steps {
            if action == 3
                && let Some((lamport, vector)) = wire[m].pop_front()
            {
                for (mine, theirs) in vectors[m].iter_mut().zip(vector) {
                    *mine = (*mine).max(theirs);
                }
                lamports[m] = lamports[m].max(lamport);
            }
            vectors[m][m] += 1;
            lamports[m] += 1;
            if action == 1 || action == 2 {
                wire[(m + usize::from(action)) % 3].push_back((lamports[m], vectors[m].clone()));
            }
            ticks.push((m as MachineId + 1, lamports[m], vectors[m].clone()));
        }
        ticks
    }

    proptest! {
        /// For the rule's vectors, comparing a pair's two own components
        /// counts what comparing every component counts.
        #[test]
        fn own_components_count_what_every_component_counts(
            steps in proptest::collection::vec((0usize..3, 0u8..4), 0..120),
            large in any::<bool>(),
            small_sample in any::<bool>(),
        ) {
            let offset = if large { u64::from(u32::MAX) } else { 0 };
            let (mut every, mut own) = (Concurrency::new(3, 7), Concurrency::replayed(&[1, 2, 3], 7));
            if small_sample {
                // A sample smaller than the ticks: the same ticks are sampled in both.
                (every.capacity, own.capacity) = (16, 16);
            }
            for (machine, lamport, vector) in clock_made_ticks(&steps, offset) {
                every.add(machine, lamport, &vector);
                own.add(machine, lamport, &vector);
            }
            prop_assert_eq!(own.counts(), every.counts());
        }
    }

    #[test]
    fn counts_concurrent_and_falsely_ordered_pairs() {
        let mut concurrency = Concurrency::new(2, 1);
        // Machine 1: a (L1), then a send s (L2); machine 2: c (L1), then the receive r of s (L3).
        concurrency.add(1, 1, &[1, 0]);
        concurrency.add(1, 2, &[2, 0]);
        concurrency.add(2, 1, &[0, 1]);
        concurrency.add(2, 3, &[2, 2]);
        let counts = concurrency.counts();
        // Cross pairs: (a,c) concurrent, L equal; (a,r) a→r; (s,c) concurrent, L 2 vs 1; (s,r) s→r.
        assert_eq!((counts.pairs, counts.concurrent, counts.falsely_ordered), (4, 2, 1));
        assert!(counts.exact());
        assert_eq!(counts.concurrent_share(), 0.5);
        assert_eq!(counts.false_ordering_of_concurrent(), 0.5);
    }

    #[test]
    fn a_long_run_is_sampled_the_same_way_every_time() {
        let run = |seed| {
            let mut concurrency = Concurrency::new(3, seed);
            for k in 0..20_000u64 {
                let machine = (k % 3) as MachineId + 1;
                concurrency.add(machine, k, &[k / 3, k / 3 + machine as u64, k]);
            }
            concurrency.counts()
        };
        let counts = run(7);
        assert_eq!(counts, run(7));
        assert_eq!((counts.ticks, counts.sampled), (20_000, 4_096));
        assert!(!counts.exact());
    }
}
