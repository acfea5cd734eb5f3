//! The count argument of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER, and the bound on their
//! samples with repetition.
//!
//! A negative count asks for that many independent samples whatever the size of the data, so
//! it is the one reply whose size a number in the request decides alone. Redis 7.0 draws as
//! many as asked, growing the reply, so `SRANDMEMBER s -9223372036854775807` would hold a
//! shard for ever and exhaust memory. Shardis bounds such a reply by `proto-max-bulk-len`
//! (the largest argument a client may send), counting one reply slot per entry plus the
//! bytes of the members, and answers Redis's "value is out of range" beyond it.

use shardis_resp::Reply;

use crate::error;
use crate::num;
use crate::shard::Ctx;

const OUT_OF_RANGE: &str = "ERR value is out of range";
const COUNT_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

/// Parses a random-member count as Redis does (any integer but `i64::MIN`, which has no
/// positive counterpart).
pub fn parse_count(arg: &[u8]) -> Result<i64, Reply> {
    match num::parse_i64(arg) {
        None => Err(error::not_integer()),
        Some(i64::MIN) => Err(Reply::err(COUNT_RANGE)),
        Some(n) => Ok(n),
    }
}

/// With WITHSCORES / WITHVALUES each entry is two replies: Redis keeps the doubled count
/// representable.
pub fn check_paired(count: i64) -> Result<(), Reply> {
    if (-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        Ok(())
    } else {
        Err(Reply::err(OUT_OF_RANGE))
    }
}

/// What is left of the room for samples with repetition.
pub struct SampleBudget {
    bytes_left: usize,
}

impl SampleBudget {
    /// Room for `samples` entries of `replies_per_entry` replies each, refused at once when
    /// their reply slots alone would not fit.
    pub fn new(ctx: &Ctx<'_>, samples: u64, replies_per_entry: usize) -> Result<Self, Reply> {
        let slot = size_of::<Reply>().saturating_mul(replies_per_entry) as u64;
        let slots = samples.saturating_mul(slot);
        let room = ctx.shard.config.proto_max_bulk_len as u64;
        match room.checked_sub(slots) {
            Some(left) => Ok(SampleBudget {
                bytes_left: usize::try_from(left).unwrap_or(usize::MAX),
            }),
            None => Err(Reply::err(OUT_OF_RANGE)),
        }
    }

    /// Counts the bytes of one sampled entry; an error once the samples no longer fit.
    pub fn take(&mut self, bytes: usize) -> Result<(), Reply> {
        match self.bytes_left.checked_sub(bytes) {
            Some(left) => {
                self.bytes_left = left;
                Ok(())
            }
            None => Err(Reply::err(OUT_OF_RANGE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn counts_as_redis_parses_them() {
        assert_eq!(parse_count(b"-9223372036854775807"), Ok(-i64::MAX));
        assert_eq!(parse_count(b"-9223372036854775808"), Err(err(COUNT_RANGE)));
        assert_eq!(parse_count(b"x"), Err(error::not_integer()));
        assert_eq!(check_paired(i64::MAX / 2), Ok(()));
        assert_eq!(check_paired(-(i64::MAX / 2) - 1), Err(err(OUT_OF_RANGE)));
    }

    #[test]
    fn samples_with_repetition_are_bounded() {
        let mut t = TestShard::new();
        t.run(&["sadd", "s", "a"]);
        t.run(&["hset", "h", "f", "v"]);
        t.run(&["zadd", "z", "1", "m"]);
        // Each of these used to loop 2^63 times, growing its reply until memory ran out.
        for request in [
            &["srandmember", "s", "-9223372036854775807"][..],
            &["hrandfield", "h", "-9223372036854775807"],
            &["hrandfield", "h", "-4611686018427387903", "withvalues"],
            &["zrandmember", "z", "-9223372036854775807"],
            &["zrandmember", "z", "-4611686018427387903", "withscores"],
        ] {
            assert_eq!(t.run(request), err(OUT_OF_RANGE), "{request:?}");
        }
        // Within the bound, the samples are all there.
        for request in [
            &["srandmember", "s", "-1000"][..],
            &["hrandfield", "h", "-1000"],
            &["zrandmember", "z", "-1000"],
        ] {
            let Reply::Array(items) = t.run(request) else {
                panic!("{request:?}");
            };
            assert_eq!(items.len(), 1000, "{request:?}");
        }
        // The bound counts the members' bytes too: big members reach it sooner.
        t.shard.config.proto_max_bulk_len = 1 << 20;
        let big = "x".repeat(100_000);
        t.run(&["sadd", "big", &big]);
        let Reply::Array(items) = t.run(&["srandmember", "big", "-10"]) else {
            panic!("srandmember");
        };
        assert_eq!(items.len(), 10);
        assert_eq!(t.run(&["srandmember", "big", "-11"]), err(OUT_OF_RANGE));
    }
}
