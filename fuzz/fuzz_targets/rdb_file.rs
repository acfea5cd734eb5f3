//! Loads arbitrary bytes as an RDB file, as start-up, DEBUG RELOAD and a replica's full sync
//! do (`shardis_persist::rdb::FileReader`, then the engine's `rdb::to_value` for each key):
//! a damaged or hostile file must end in an error, never a panic, and allocate no more than
//! its bytes describe. The first byte chooses whether the `REDIS0010` header is supplied, so
//! the fuzzer need not find it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_engine::EngineConfig;
use shardis_persist::rdb::{Decoded, FileReader, Item};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = Vec::with_capacity(rest.len() + 9);
    if mode & 1 == 0 {
        file.extend_from_slice(b"REDIS0010");
    }
    file.extend_from_slice(rest);
    let config = EngineConfig::default();
    let Ok(mut reader) = FileReader::new(&file[..]) else {
        return;
    };
    for _ in 0..10_000 {
        match reader.next_item() {
            Ok(Item::Key(k)) => {
                if let Decoded::Value(v) = k.value {
                    let value = shardis_engine::rdb::to_value(v, &config);
                    let _ = shardis_engine::rdb::serialize(&value, false);
                }
            }
            Ok(Item::Eof { .. }) | Err(_) => return,
            Ok(_) => {}
        }
    }
});
