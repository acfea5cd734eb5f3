//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD: the commands that combine
//! several sorted sets (plain sets count as sets whose scores are all 1, as in Redis).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *acc += v;
                // inf + -inf is NaN; Redis makes it 0.
                if acc.is_nan() {
                    *acc = 0.0;
                }
            }
            Aggregate::Min => {
                if v < *acc {
                    *acc = v;
                }
            }
            Aggregate::Max => {
                if v > *acc {
                    *acc = v;
                }
            }
        }
    }
}

/// One input of a set operation: a sorted set, a plain set (every member scores 1) or a
/// missing key (empty).
#[derive(Clone, Copy)]
enum Source<'a> {
    Empty,
    ZSet(&'a ZSetValue),
    /// A set, with its members spelled out (an intset stores numbers, not bytes).
    Set(&'a SetValue, &'a [Bytes]),
}

impl<'a> Source<'a> {
    fn len(&self) -> usize {
        match self {
            Source::Empty => 0,
            Source::ZSet(z) => z.len(),
            Source::Set(_, members) => members.len(),
        }
    }

    fn find(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Empty => None,
            Source::ZSet(z) => z.score(member),
            Source::Set(s, _) => s.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&'a [u8], f64)) {
        match *self {
            Source::Empty => {}
            Source::ZSet(z) => {
                if let Repr::Skiplist(large) = &z.repr {
                    for (m, &s) in large.scores.iter() {
                        f(m, s);
                    }
                } else if let Repr::Listpack(items) = &z.repr {
                    for i in items {
                        f(&i.member, i.score);
                    }
                }
            }
            Source::Set(_, members) => {
                for m in members {
                    f(m, 1.0);
                }
            }
        }
    }
}

/// What a set operation computed.
enum SetOpResult {
    Items(Vec<Item>),
    Cardinality(usize),
}

/// `weight * score`, with NaN (0 × inf) taken as 0 as Redis does.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

fn compute_setop(
    inputs: &mut [(Source<'_>, f64)],
    op: SetOp,
    agg: Aggregate,
    card_limit: Option<usize>,
) -> SetOpResult {
    if op != SetOp::Diff {
        inputs.sort_by_key(|(s, _)| s.len());
    }
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            let Some((&(first, w0), rest)) = inputs.split_first() else {
                return SetOpResult::Items(Vec::new());
            };
            let mut done = false;
            first.for_each(|m, s| {
                if done {
                    return;
                }
                let mut score = weighted(s, w0);
                for (src, w) in rest {
                    match src.find(m) {
                        Some(v) => agg.apply(&mut score, v * w),
                        None => return,
                    }
                }
                match card_limit {
                    Some(limit) => {
                        cardinality += 1;
                        done = limit > 0 && cardinality >= limit;
                    }
                    None => found.push((m, score)),
                }
            });
        }
        SetOp::Union => {
            let mut acc: ahash::HashMap<&[u8], f64> = ahash::HashMap::default();
            for (src, w) in inputs.iter() {
                src.for_each(|m, s| {
                    let v = weighted(s, *w);
                    acc.entry(m)
                        .and_modify(|cur| agg.apply(cur, v))
                        .or_insert(v);
                });
            }
            found.extend(acc);
        }
        SetOp::Diff => {
            if let Some(((first, _), rest)) = inputs.split_first() {
                first.for_each(|m, s| {
                    if rest.iter().all(|(src, _)| src.find(m).is_none()) {
                        found.push((m, s));
                    }
                });
            }
        }
    }
    if card_limit.is_some() {
        return SetOpResult::Cardinality(cardinality);
    }
    let mut items: Vec<Item> = found
        .into_iter()
        .map(|(m, s)| Item::new(s, Member::from(m)))
        .collect();
    items.sort_by(|a, b| cmp_entries(a.score, &a.member, b.score, &b.member));
    SetOpResult::Items(items)
}

/// The shared body of ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD. A STORE
/// form's `name` is also the event its write reports.
fn setop_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    name: &'static str,
    dst: Option<&[u8]>,
    op: SetOp,
    card_only: bool,
) -> Reply {
    let numkeys_at = if dst.is_some() { 2 } else { 1 };
    let numkeys = match parse_int(&args[numkeys_at]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 1 {
        return Reply::error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    let first_key = numkeys_at + 1;
    if numkeys as u64 > (args.len() - first_key) as u64 {
        return error::syntax();
    }
    let numkeys = numkeys as usize;
    let keys = &args[first_key..first_key + numkeys];
    // Types are checked before the options are read, as Redis does.
    for key in keys {
        match ctx.lookup_read(key) {
            None | Some(Value::ZSet(_)) | Some(Value::Set(_)) => {}
            Some(_) => return error::wrongtype(),
        }
    }
    let mut weights = vec![1.0f64; numkeys];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = first_key + numkeys;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        let combining = op != SetOp::Diff && !card_only;
        if combining && remaining > numkeys && eq(a, "weights") {
            for (w, arg) in weights.iter_mut().zip(&args[j + 1..]) {
                match num::parse_f64(arg) {
                    Some(v) => *w = v,
                    None => return Reply::err("ERR weight value is not a float"),
                }
            }
            j += 1 + numkeys;
        } else if combining && remaining >= 2 && eq(a, "aggregate") {
            let b = &args[j + 1];
            agg = if eq(b, "sum") {
                Aggregate::Sum
            } else if eq(b, "min") {
                Aggregate::Min
            } else if eq(b, "max") {
                Aggregate::Max
            } else {
                return error::syntax();
            };
            j += 2;
        } else if dst.is_none() && !card_only && eq(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && eq(a, "limit") {
            match num::parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return Reply::err("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return error::syntax();
        }
    }
    let result = {
        let db = &*ctx.db();
        let set_members: Vec<Vec<Bytes>> = keys
            .iter()
            .map(|k| match db.peek(k).map(|e| &e.value) {
                Some(Value::Set(s)) => s
                    .iter()
                    .map(|m| {
                        let mut buf = [0u8; 20];
                        Bytes::copy_from_slice(m.as_bytes(&mut buf))
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let mut inputs: Vec<(Source<'_>, f64)> = keys
            .iter()
            .zip(weights)
            .zip(&set_members)
            .map(|((k, w), members)| {
                let src = match db.peek(k).map(|e| &e.value) {
                    Some(Value::ZSet(z)) => Source::ZSet(z),
                    Some(Value::Set(s)) => Source::Set(s, members),
                    _ => Source::Empty,
                };
                (src, w)
            })
            .collect();
        compute_setop(&mut inputs, op, agg, card_only.then_some(limit))
    };
    match result {
        SetOpResult::Cardinality(n) => Reply::Int(n as i64),
        SetOpResult::Items(items) => match dst {
            Some(dst) => store_result(ctx, dst, items, name),
            None => {
                let resp3 = ctx.resp3;
                let mut out = Vec::with_capacity(items.len() * if withscores { 2 } else { 1 });
                for i in &items {
                    push_entry(&mut out, &i.member, i.score, withscores, resp3);
                }
                Reply::Array(out)
            }
        },
    }
}

/// ZUNION numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zunion", None, SetOp::Union, false)
}

/// ZINTER numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zinter", None, SetOp::Inter, false)
}

/// ZDIFF numkeys key [key …] [WITHSCORES]
pub fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zdiff", None, SetOp::Diff, false)
}

/// ZUNIONSTORE dst numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(
        ctx,
        args,
        "zunionstore",
        Some(&args[1]),
        SetOp::Union,
        false,
    )
}

/// ZINTERSTORE dst numkeys key [key …] [WEIGHTS w…] [AGGREGATE SUM|MIN|MAX]
pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(
        ctx,
        args,
        "zinterstore",
        Some(&args[1]),
        SetOp::Inter,
        false,
    )
}

/// ZDIFFSTORE dst numkeys key [key …]
pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zdiffstore", Some(&args[1]), SetOp::Diff, false)
}

/// ZINTERCARD numkeys key [key …] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    setop_generic(ctx, args, "zintercard", None, SetOp::Inter, true)
}
