//! A whole RDB file: `REDIS` and a 4-digit version, aux fields, then per database a SELECTDB
//! (and a RESIZEDB hint) followed by its keys (each optionally preceded by its expiry and its
//! LRU idle time or LFU counter), functions and module aux data anywhere between keys, and
//! finally EOF with the CRC64 of everything before it (0 when the writer skipped it).

use bytes::Bytes;

use super::read::{Reader, Source};
use super::value::{read_value, Decoded};
use super::{opcodes, types, Error, Result};

/// One thing found in a file, in order.
#[derive(Debug, PartialEq)]
pub enum Item {
    Aux(Bytes, Bytes),
    SelectDb(u64),
    ResizeDb {
        keys: u64,
        expires: u64,
    },
    /// A function library's code (its `#!lua name=` line included).
    Function(Bytes),
    Key(Key),
    /// The end; `checksum_ok` is false when the stored CRC64 did not match.
    Eof {
        checksum_ok: bool,
    },
}

/// A key and its value.
#[derive(Debug, PartialEq)]
pub struct Key {
    pub db: u64,
    pub key: Bytes,
    pub value: Decoded,
    /// Absolute expiry in Unix milliseconds.
    pub expire_ms: Option<i64>,
    pub idle_secs: Option<u64>,
    pub freq: Option<u8>,
}

/// Reads a file item by item.
pub struct FileReader<S> {
    r: Reader<S>,
    pub version: u16,
    db: u64,
    done: bool,
}

impl<S: Source> FileReader<S> {
    /// Reads and checks the header.
    pub fn new(src: S) -> Result<FileReader<S>> {
        let mut r = Reader::with_crc(src);
        let magic: [u8; 9] = r.array()?;
        if &magic[..5] != b"REDIS" {
            return Err(Error::corrupt(
                "wrong signature trying to load DB from file",
            ));
        }
        let version = std::str::from_utf8(&magic[5..])
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .ok_or(Error::corrupt("bad RDB version"))?;
        if version == 0 || version > super::RDB_VERSION {
            return Err(Error::Unsupported(format!(
                "Can't handle RDB format version {version}"
            )));
        }
        Ok(FileReader {
            r,
            version,
            db: 0,
            done: false,
        })
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.r.pos
    }

    /// The next item; after [`Item::Eof`], every call fails.
    pub fn next_item(&mut self) -> Result<Item> {
        if self.done {
            return Err(Error::corrupt("read past the end of the file"));
        }
        let mut expire_ms = None;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            let t = self.r.u8()?;
            match t {
                opcodes::EXPIRETIME_MS => expire_ms = Some(self.r.ms_time()?),
                opcodes::EXPIRETIME => {
                    let secs = i32::from_le_bytes(self.r.array()?);
                    expire_ms = Some(i64::from(secs) * 1000);
                }
                opcodes::IDLE => idle_secs = Some(self.r.length()?),
                opcodes::FREQ => freq = Some(self.r.u8()?),
                opcodes::SELECTDB => {
                    self.db = self.r.length()?;
                    return Ok(Item::SelectDb(self.db));
                }
                opcodes::RESIZEDB => {
                    let keys = self.r.length()?;
                    let expires = self.r.length()?;
                    return Ok(Item::ResizeDb { keys, expires });
                }
                opcodes::AUX => {
                    let k = self.r.bytes_string()?;
                    let v = self.r.bytes_string()?;
                    return Ok(Item::Aux(k, v));
                }
                opcodes::MODULE_AUX => {
                    return Err(Error::Unsupported(
                        "The RDB file contains AUX module data I can't load: no matching module"
                            .into(),
                    ))
                }
                opcodes::FUNCTION2 => return Ok(Item::Function(self.r.bytes_string()?)),
                opcodes::FUNCTION => {
                    // 7.0 release candidates: name, engine, optional description, code.
                    let name = self.r.bytes_string()?;
                    let engine = self.r.bytes_string()?;
                    if self.r.length()? != 0 {
                        self.r.bytes_string()?;
                    }
                    let code = self.r.bytes_string()?;
                    let mut payload = format!(
                        "#!{} name={}\n",
                        String::from_utf8_lossy(&engine),
                        String::from_utf8_lossy(&name)
                    )
                    .into_bytes();
                    payload.extend_from_slice(&code);
                    return Ok(Item::Function(Bytes::from(payload)));
                }
                opcodes::EOF => {
                    self.done = true;
                    let computed = self.r.crc();
                    if self.version < 5 {
                        return Ok(Item::Eof { checksum_ok: true });
                    }
                    let stored = u64::from_le_bytes(self.r.array()?);
                    return Ok(Item::Eof {
                        checksum_ok: stored == 0 || stored == computed,
                    });
                }
                t if types::is_object_type(t) => {
                    let key = self.r.bytes_string()?;
                    let value = read_value(&mut self.r, t)?;
                    return Ok(Item::Key(Key {
                        db: self.db,
                        key,
                        value,
                        expire_ms,
                        idle_secs,
                        freq,
                    }));
                }
                _ => return Err(Error::corrupt("unknown RDB opcode or type")),
            }
        }
    }

    /// What is left of the source after the end (nothing, in a well-formed file).
    pub fn into_source(self) -> S {
        self.r.into_source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::crc64;
    use crate::rdb::value::{write_value, RdbValue};
    use crate::rdb::Writer;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn file() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out, true);
            w.header();
            w.aux(b"redis-ver", b"7.0.15");
            w.select_db(0);
            w.resize_db(2, 1);
            w.key_prefix(Some(1_700_000_000_000), None, None);
            let t = {
                let mut body = Vec::new();
                let t = write_value(&mut Writer::new(&mut body, true), &RdbValue::String(b("v")));
                w.byte(t);
                w.string(b"k1");
                w.raw(&body);
                t
            };
            assert_eq!(t, types::STRING);
            w.select_db(3);
            w.byte(types::STRING);
            w.string(b"k2");
            w.string(b"12");
            w.byte(opcodes::FUNCTION2);
            w.string(b"#!lua name=lib\nredis.register_function('f', function() end)");
            w.byte(opcodes::EOF);
        }
        let crc = crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn items(data: &[u8]) -> Result<Vec<Item>> {
        let mut f = FileReader::new(data)?;
        let mut out = Vec::new();
        loop {
            let it = f.next_item()?;
            let end = matches!(it, Item::Eof { .. });
            out.push(it);
            if end {
                return Ok(out);
            }
        }
    }

    #[test]
    fn a_file_reads_back() {
        let got = items(&file()).expect("valid");
        assert_eq!(got[0], Item::Aux(b("redis-ver"), b("7.0.15")));
        assert_eq!(got[1], Item::SelectDb(0));
        assert_eq!(
            got[3],
            Item::Key(Key {
                db: 0,
                key: b("k1"),
                value: Decoded::Value(RdbValue::String(b("v"))),
                expire_ms: Some(1_700_000_000_000),
                idle_secs: None,
                freq: None,
            })
        );
        assert!(matches!(&got[5], Item::Key(k) if k.db == 3 && k.key == b("k2")));
        assert!(matches!(&got[6], Item::Function(_)));
        assert_eq!(got[7], Item::Eof { checksum_ok: true });
    }

    #[test]
    fn a_damaged_checksum_is_reported() {
        let mut f = file();
        let n = f.len();
        f[n - 1] ^= 1;
        assert_eq!(
            items(&f).expect("readable").pop(),
            Some(Item::Eof { checksum_ok: false })
        );
    }

    #[test]
    fn any_damage_or_cut_is_an_error_not_a_panic() {
        let f = file();
        for cut in 0..f.len() - 8 {
            assert!(items(&f[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..f.len() {
            for v in [0u8, 0x40, 0x80, 0x81, 0xc3, 0xfe, 0xff] {
                let mut bad = f.clone();
                bad[i] = v;
                let _ = items(&bad);
            }
        }
    }
}
