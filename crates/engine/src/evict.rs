//! Eviction under `maxmemory`: the policies, the access clock (LRU) or frequency counter (LFU)
//! every entry keeps, and the choice of the key to evict, as Redis's `evict.c` does it.
//!
//! The shard never measures memory: the runtime does (per core, from the allocator), and asks
//! the shard to evict one key at a time until its share of `maxmemory` is respected.
//!
//! - LRU: an entry's access field is the shard's clock at its last access, in tenths of a
//!   second over 28 bits (it wraps after 310 days; Redis's counts seconds over 24 bits and
//!   wraps after 194); its idle time is the difference. A tenth of a second tells apart the
//!   keys of a cache whose contents turn over in seconds.
//! - LFU: the same 24 bits hold the minute of the last decrement (16 bits) and a logarithmic
//!   access counter (8 bits): new keys start at 5, an access increments the counter with a
//!   probability falling as it grows (`lfu-log-factor`), and it loses one per
//!   `lfu-decay-time` minutes without access.
//! - Picking a key: sample `maxmemory-samples` keys of every database (all keys, or only
//!   those with a TTL for the volatile policies) into a pool of the 16 best candidates seen so
//!   far, best = longest idle, least frequent, or nearest expiry; evict the best that still
//!   exists. The pool survives between evictions, which is what makes a few samples per key a
//!   good approximation of the true LRU. The random policies pick any key, visiting the
//!   databases in turn.

use crate::db::{Db, Entry};

/// Redis's `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    #[default]
    NoEviction,
}

/// The policies by name, in Redis's order (which its CONFIG SET error lists).
pub const POLICIES: [(&str, Policy); 8] = [
    ("volatile-lru", Policy::VolatileLru),
    ("volatile-lfu", Policy::VolatileLfu),
    ("volatile-random", Policy::VolatileRandom),
    ("volatile-ttl", Policy::VolatileTtl),
    ("allkeys-lru", Policy::AllKeysLru),
    ("allkeys-lfu", Policy::AllKeysLfu),
    ("allkeys-random", Policy::AllKeysRandom),
    ("noeviction", Policy::NoEviction),
];

/// How a policy ranks keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rank {
    Lru,
    Lfu,
    Ttl,
    Random,
}

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        POLICIES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, p)| p)
    }

    pub fn name(self) -> &'static str {
        POLICIES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("noeviction", |(n, _)| n)
    }

    /// True for the policies that keep an access frequency instead of an access time.
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// True for the policies that rank keys by an access time or frequency (LRU and LFU).
    pub fn tracks_access(self) -> bool {
        matches!(self.rank(), Some(Rank::Lru | Rank::Lfu))
    }

    /// True when only keys with a TTL may be evicted.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn rank(self) -> Option<Rank> {
        match self {
            Policy::VolatileLru | Policy::AllKeysLru => Some(Rank::Lru),
            Policy::VolatileLfu | Policy::AllKeysLfu => Some(Rank::Lfu),
            Policy::VolatileTtl => Some(Rank::Ttl),
            Policy::VolatileRandom | Policy::AllKeysRandom => Some(Rank::Random),
            Policy::NoEviction => None,
        }
    }
}

/// The LFU counter of a new key (Redis's `LFU_INIT_VAL`): a few accesses' worth of credit so a
/// key is not evicted before it had a chance to be read.
pub const LFU_INIT: u8 = 5;

/// The access tracking parameters: the policy decides LRU or LFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracking {
    pub policy: Policy,
    /// `lfu-log-factor`: how much harder each increment gets as the counter grows.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`: minutes without access per decrement (0: never decays).
    pub lfu_decay_time: u32,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            policy: Policy::NoEviction,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

/// Bits of an entry's access field (the rest of its word holds the snapshot epoch, see
/// `crate::db::Entry`). LFU fields take 24 of them.
pub const ACCESS_BITS: u32 = 28;
const LRU_MAX: u32 = (1 << ACCESS_BITS) - 1;

/// Milliseconds per unit of the LRU clock.
const LRU_RESOLUTION_MS: u64 = 100;

/// The LRU timestamp: the clock in 100 ms units, wrapping at `ACCESS_BITS` bits.
fn lru_clock(now_ms: u64) -> u32 {
    (now_ms / LRU_RESOLUTION_MS) as u32 & LRU_MAX
}

/// Minutes of the clock, 16 bits (the LFU decrement time wraps every 45 days, as Redis's).
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

impl Tracking {
    /// The `lru` field of a key created now.
    pub fn fresh(&self, now_ms: u64) -> u32 {
        if self.policy.is_lfu() {
            lfu_field(now_ms, LFU_INIT)
        } else {
            lru_clock(now_ms)
        }
    }

    /// The `lru` field after an access (`rand` is a random number, for the LFU increment).
    pub fn touched(&self, lru: u32, now_ms: u64, rand: u64) -> u32 {
        if !self.policy.is_lfu() {
            return lru_clock(now_ms);
        }
        let counter = self.frequency(lru, now_ms);
        lfu_field(now_ms, log_increment(counter, rand, self.lfu_log_factor))
    }

    /// The LFU counter of `lru` after the decay due since its last decrement (OBJECT FREQ).
    pub fn frequency(&self, lru: u32, now_ms: u64) -> u8 {
        let counter = (lru & 0xff) as u8;
        if self.lfu_decay_time == 0 {
            return counter;
        }
        let last = (lru >> 8) & 0xffff;
        let now = lfu_minutes(now_ms);
        let elapsed = if now >= last {
            now - last
        } else {
            0xffff - last + now
        };
        let periods = elapsed / self.lfu_decay_time;
        counter.saturating_sub(periods.min(255) as u8)
    }

    /// The LRU timestamp of a key idle for `idle_secs` seconds now (RESTORE IDLETIME).
    pub fn idle_since(now_ms: u64, idle_secs: i64) -> u32 {
        let units = u64::try_from(idle_secs).unwrap_or(0).saturating_mul(1000) / LRU_RESOLUTION_MS;
        lru_clock(now_ms).wrapping_sub(units.min(u64::from(LRU_MAX)) as u32) & LRU_MAX
    }

    /// Idle time in milliseconds of an LRU timestamp (OBJECT IDLETIME reports it in seconds).
    pub fn idle_ms(lru: u32, now_ms: u64) -> u64 {
        u64::from(lru_clock(now_ms).wrapping_sub(lru) & LRU_MAX) * LRU_RESOLUTION_MS
    }

    /// How good a candidate for eviction an entry (expiring at `expire_at`) is: higher is
    /// evicted first.
    fn score(&self, rank: Rank, entry: &Entry, expire_at: Option<u64>, now_ms: u64) -> u64 {
        match rank {
            Rank::Lru => Self::idle_ms(entry.lru(), now_ms),
            Rank::Lfu => 255 - u64::from(self.frequency(entry.lru(), now_ms)),
            Rank::Ttl => u64::MAX - expire_at.unwrap_or(u64::MAX),
            Rank::Random => 0,
        }
    }
}

/// An LFU field: the minute of the last decrement and the counter.
pub fn lfu_field(now_ms: u64, counter: u8) -> u32 {
    (lfu_minutes(now_ms) << 8) | u32::from(counter)
}

/// Redis's `LFULogIncr`: +1 with probability 1 / ((counter - 5) × factor + 1).
fn log_increment(counter: u8, rand: u64, log_factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let r = (rand >> 11) as f64 / (1u64 << 53) as f64;
    let base = f64::from(counter.saturating_sub(LFU_INIT));
    let p = 1.0 / (base * f64::from(log_factor) + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// Candidates kept between evictions (Redis's `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;

/// One candidate: its score when sampled, its database and a copy of its name.
#[derive(Debug, Default)]
struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

/// The best candidates seen so far, lowest score first. Key buffers are reused, so sampling
/// allocates nothing once the pool is warm.
#[derive(Debug, Default)]
pub struct Pool {
    entries: Vec<Candidate>,
    spare: Vec<Vec<u8>>,
}

impl Pool {
    fn buffer(&mut self, key: &[u8]) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(key);
        buf
    }

    fn recycle(&mut self, c: Candidate) {
        if c.key.capacity() <= 256 {
            self.spare.push(c.key);
        }
    }

    /// Offers a sampled key; kept if the pool has room or it beats the worst candidate.
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if let Some(same) = self.entries.iter().position(|c| c.db == db && c.key == key) {
            // Sampled again: keep one slot, with the newer score.
            let c = self.entries.remove(same);
            self.recycle(c);
        }
        let at = self.entries.partition_point(|c| c.score < score);
        if self.entries.len() == POOL_SIZE {
            if at == 0 {
                return;
            }
            let worst = self.entries.remove(0);
            self.recycle(worst);
            let key = self.buffer(key);
            self.entries.insert(at - 1, Candidate { score, db, key });
        } else {
            let key = self.buffer(key);
            self.entries.insert(at, Candidate { score, db, key });
        }
    }

    /// The best candidate, taken out of the pool.
    fn pop_best(&mut self) -> Option<Candidate> {
        self.entries.pop()
    }

    /// The best score in the pool.
    pub fn best_score(&self) -> Option<u64> {
        self.entries.last().map(|c| c.score)
    }

    pub fn clear(&mut self) {
        while let Some(c) = self.entries.pop() {
            self.recycle(c);
        }
    }
}

/// What picking a key needs besides the databases.
pub struct Picker<'a> {
    pub tracking: Tracking,
    pub samples: usize,
    pub pool: &'a mut Pool,
    /// The database the random policies try first; advanced on each pick.
    pub next_db: &'a mut usize,
    pub now_ms: u64,
}

impl Picker<'_> {
    /// Samples every database into the pool; returns how many keys could be evicted.
    fn populate(&mut self, dbs: &[Db], rank: Rank, rand: &mut impl FnMut() -> u64) -> usize {
        let volatile = self.tracking.policy.volatile_only();
        let mut total = 0;
        for (i, db) in dbs.iter().enumerate() {
            let n = if volatile {
                db.volatile_len()
            } else {
                db.len()
            };
            if n == 0 {
                continue;
            }
            total += n;
            let tracking = self.tracking;
            let now = self.now_ms;
            let pool = &mut *self.pool;
            db.sample_entries(rand(), self.samples, volatile, |key, entry| {
                let score = tracking.score(rank, entry, db.expire_of(entry), now);
                pool.offer(score, i, key);
            });
        }
        total
    }

    /// The key the policy evicts next, as (database, name); None when no key may be evicted.
    pub fn pick(&mut self, dbs: &[Db], rand: &mut impl FnMut() -> u64) -> Option<(usize, Vec<u8>)> {
        let rank = self.tracking.policy.rank()?;
        let volatile = self.tracking.policy.volatile_only();
        if rank == Rank::Random {
            for _ in 0..dbs.len() {
                *self.next_db = (*self.next_db + 1) % dbs.len().max(1);
                let db = dbs.get(*self.next_db)?;
                if let Some(key) = db.random_name(rand(), volatile) {
                    return Some((*self.next_db, key.to_vec()));
                }
            }
            return None;
        }
        loop {
            if self.populate(dbs, rank, rand) == 0 {
                return None;
            }
            // Best first. A candidate deleted since it was sampled is a ghost, skipped; one
            // used since (its score dropped) goes back with its current score, so a key read
            // after it was sampled is not evicted on a stale score (Redis evicts it anyway).
            while let Some(c) = self.pool.pop_best() {
                let now = self.now_ms;
                let current = dbs.get(c.db).and_then(|db| {
                    let e = db.peek(&c.key)?;
                    if volatile && !e.has_expire() {
                        return None;
                    }
                    Some(self.tracking.score(rank, e, db.expire_of(e), now))
                });
                match current {
                    Some(score) if score >= c.score => {
                        let found = (c.db, c.key.clone());
                        self.pool.recycle(c);
                        return Some(found);
                    }
                    Some(score) => self.pool.offer(score, c.db, &c.key),
                    None => {}
                }
                self.pool.recycle(c);
            }
        }
    }

    /// The score of the best candidate after one round of sampling (how cold the keys this
    /// shard would evict next are), without evicting anything. None for the random policies
    /// and when nothing may be evicted.
    pub fn coldest(&mut self, dbs: &[Db], rand: &mut impl FnMut() -> u64) -> Option<u64> {
        let rank = self.tracking.policy.rank()?;
        if rank == Rank::Random || self.populate(dbs, rank, rand) == 0 {
            return None;
        }
        self.pool.best_score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_name_like_redis() {
        for (name, p) in POLICIES {
            assert_eq!(Policy::parse(name), Some(p));
            assert_eq!(Policy::parse(&name.to_uppercase()), Some(p));
            assert_eq!(p.name(), name);
        }
        assert_eq!(Policy::parse("lru"), None);
        assert!(Policy::VolatileLfu.is_lfu() && Policy::AllKeysLfu.is_lfu());
        assert!(!Policy::AllKeysLru.is_lfu());
        assert!(Policy::VolatileTtl.volatile_only() && !Policy::AllKeysRandom.volatile_only());
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let t = Tracking {
            policy: Policy::AllKeysLfu,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        };
        let now = 1_700_000_000_000;
        let mut lru = t.fresh(now);
        assert_eq!(t.frequency(lru, now), LFU_INIT);
        let mut rng = crate::shard::rand_stream(3);
        for _ in 0..1000 {
            lru = t.touched(lru, now, rng());
        }
        let f = t.frequency(lru, now);
        // Redis's table for factor 10: 1K hits give about 18.
        assert!((12..=30).contains(&f), "{f}");
        for _ in 0..100_000 {
            lru = t.touched(lru, now, rng());
        }
        let g = t.frequency(lru, now);
        assert!(g > f && g < 255, "{g}");
        // Three minutes without access: three decrements.
        assert_eq!(t.frequency(lru, now + 180_000), g - 3);
        let never = Tracking {
            lfu_decay_time: 0,
            ..t
        };
        assert_eq!(never.frequency(lru, now + 10_000_000), g);
        // Saturates at 255, and with factor 0 every access counts.
        let eager = Tracking {
            lfu_log_factor: 0,
            ..t
        };
        let mut x = eager.fresh(now);
        for _ in 0..300 {
            x = eager.touched(x, now, rng());
        }
        assert_eq!(eager.frequency(x, now), 255);
    }

    #[test]
    fn lru_idle_time_is_seconds_since_access() {
        let t = Tracking::default();
        let lru = t.fresh(10_000);
        assert_eq!(Tracking::idle_ms(lru, 10_099), 0);
        assert_eq!(Tracking::idle_ms(lru, 10_999), 900);
        assert_eq!(Tracking::idle_ms(lru, 13_000), 3000);
        // The clock wraps at 28 bits of tenths of a second, 310 days.
        let wrap = (1u64 << ACCESS_BITS) * 100;
        let late = t.fresh(wrap - 1000);
        assert!(late <= LRU_MAX);
        assert_eq!(Tracking::idle_ms(late, wrap + 4000), 5000);
        // RESTORE IDLETIME: an idle time far past the wrap is clamped, never wrapped round.
        let old = Tracking::idle_since(wrap + 4000, i64::MAX);
        assert_eq!(
            Tracking::idle_ms(old, wrap + 4000),
            u64::from(LRU_MAX) * 100
        );
        assert_eq!(
            Tracking::idle_ms(Tracking::idle_since(13_000, 2), 13_000),
            2000
        );
    }

    #[test]
    fn pool_keeps_the_best_sixteen_and_no_duplicates() {
        let mut pool = Pool::default();
        for i in 0..40u64 {
            pool.offer(i * 7 % 41, 0, format!("k{i}").as_bytes());
        }
        assert_eq!(pool.entries.len(), POOL_SIZE);
        let scores: Vec<u64> = pool.entries.iter().map(|c| c.score).collect();
        let mut sorted = scores.clone();
        sorted.sort_unstable();
        assert_eq!(scores, sorted);
        // The 16 highest of the 40 distinct scores.
        assert_eq!(scores.first(), Some(&24));
        assert_eq!(pool.best_score(), Some(40));
        pool.offer(1000, 0, b"k3");
        pool.offer(1001, 0, b"k3");
        assert_eq!(pool.entries.iter().filter(|c| c.key == b"k3").count(), 1);
        assert_eq!(pool.pop_best().map(|c| c.score), Some(1001));
    }

    use crate::testing::{err, int, TestShard};
    use shardis_resp::Reply;

    fn shard_with(policy: Policy) -> TestShard {
        let mut t = TestShard::new();
        let mut config = t.shard.config.clone();
        config.tracking.policy = policy;
        // The tests use few keys: sampling them all makes the picks exact.
        config.maxmemory_samples = 32;
        t.shard.set_config(config);
        t
    }

    fn keys(t: &mut TestShard) -> Vec<String> {
        let Reply::Array(items) = t.run(&["keys", "*"]) else {
            panic!("keys is an array");
        };
        let mut names: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn allkeys_lru_evicts_the_least_recently_used_first() {
        let mut t = shard_with(Policy::AllKeysLru);
        for i in 0..10 {
            t.run(&["set", &format!("k{i}"), "v"]);
            t.advance(1000);
        }
        // Reading k0 makes k1 the oldest.
        t.run(&["get", "k0"]);
        t.advance(1000);
        assert!(t.shard.evict_one(t.now_ms));
        assert!(!keys(&mut t).contains(&"k1".to_string()));
        assert!(keys(&mut t).contains(&"k0".to_string()));
        assert_eq!(t.shard.stats.evicted_keys, 1);
        while t.shard.evict_one(t.now_ms) {}
        assert!(keys(&mut t).is_empty());
        assert_eq!(t.shard.stats.evicted_keys, 10);
    }

    #[test]
    fn allkeys_lfu_evicts_the_least_frequently_used() {
        let mut t = shard_with(Policy::AllKeysLfu);
        for i in 0..8 {
            t.run(&["set", &format!("k{i}"), "v"]);
        }
        for _ in 0..200 {
            for i in 1..8 {
                t.run(&["get", &format!("k{i}")]);
            }
        }
        assert!(t.shard.evict_one(t.now_ms));
        assert!(!keys(&mut t).contains(&"k0".to_string()));
        assert_eq!(keys(&mut t).len(), 7);
    }

    #[test]
    fn volatile_policies_never_evict_keys_without_a_ttl() {
        for policy in [
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ] {
            let mut t = shard_with(policy);
            for i in 0..20 {
                t.run(&["set", &format!("p{i}"), "v"]);
                t.run(&["set", &format!("v{i}"), "v", "ex", &(100 + i).to_string()]);
            }
            let mut evicted = 0;
            while t.shard.evict_one(t.now_ms) {
                evicted += 1;
            }
            assert_eq!(evicted, 20, "{policy:?}");
            let left = keys(&mut t);
            assert_eq!(left.len(), 20, "{policy:?}");
            assert!(
                left.iter().all(|k| k.starts_with('p')),
                "{policy:?}: {left:?}"
            );
        }
    }

    #[test]
    fn volatile_ttl_evicts_the_nearest_expiry_first() {
        let mut t = shard_with(Policy::VolatileTtl);
        for i in 0..10 {
            t.run(&[
                "set",
                &format!("k{i}"),
                "v",
                "ex",
                &(1000 - i * 10).to_string(),
            ]);
        }
        assert!(t.shard.evict_one(t.now_ms));
        assert!(!keys(&mut t).contains(&"k9".to_string()));
    }

    #[test]
    fn random_policies_visit_every_database() {
        let mut t = shard_with(Policy::AllKeysRandom);
        for db in [0, 3, 7] {
            t.db = db;
            t.run(&["set", "k", "v"]);
        }
        let mut evicted = 0;
        while t.shard.evict_one(t.now_ms) {
            evicted += 1;
        }
        assert_eq!(evicted, 3);
        assert!((0..16).all(|d| t.shard.db_len(d) == 0));
    }

    #[test]
    fn noeviction_evicts_nothing() {
        let mut t = shard_with(Policy::NoEviction);
        t.run(&["set", "k", "v"]);
        assert!(!t.shard.evict_one(t.now_ms));
        assert_eq!(t.shard.db_len(0), 1);
    }

    #[test]
    fn object_freq_and_idletime_follow_the_policy() {
        let mut t = shard_with(Policy::AllKeysLfu);
        t.run(&["set", "k", "v"]);
        assert_eq!(t.run(&["object", "freq", "k"]), int(i64::from(LFU_INIT)));
        assert_eq!(
            t.run(&["object", "idletime", "k"]),
            err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
        );
        for _ in 0..100 {
            t.run(&["get", "k"]);
        }
        let Reply::Int(f) = t.run(&["object", "freq", "k"]) else {
            panic!("freq is an integer");
        };
        assert!(f > i64::from(LFU_INIT), "{f}");
        // An overwrite keeps the counter; time decays it.
        t.run(&["set", "k", "w"]);
        assert_eq!(t.run(&["object", "freq", "k"]), int(f));
        t.advance(2 * 60_000);
        assert_eq!(t.run(&["object", "freq", "k"]), int(f - 2));
        let mut lru = shard_with(Policy::AllKeysLru);
        lru.run(&["set", "k", "v"]);
        lru.advance(5000);
        assert_eq!(lru.run(&["object", "idletime", "k"]), int(5));
        assert!(matches!(lru.run(&["object", "freq", "k"]), Reply::Error(_)));
    }
}
