//! String commands (Redis's `t_string.c`): GET, SET and the rest of the string family.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::error;
use crate::shard::Ctx;
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("get", get),
    Registration::shard("set", set),
];

/// The string at `key`: Ok(None) if absent, Err(WRONGTYPE) if another type.
pub fn read_string<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c Bytes>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(error::wrongtype()),
    }
}

/// GET key
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match read_string(ctx, &args[1]) {
        Ok(v) => v.cloned().into(),
        Err(e) => e,
    }
}

/// SET key value
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() != 3 {
        return error::syntax();
    }
    ctx.set(&args[1], Value::Str(Bytes::copy_from_slice(&args[2])));
    Reply::Ok
}
