//! Function libraries: the registry every core keeps a copy of (libraries by name,
//! functions by case-insensitive name), the `#!lua name=` metadata line, validation of a
//! library's code, the FUNCTION DUMP payload (Redis's RDB format), and loading the libraries
//! into a core's functions interpreter when it next runs one.
//!
//! Changes are decided on core 0 (so that two cores loading conflicting libraries at once
//! cannot both succeed) and applied on every core; see `commands`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crc::{Crc, CRC_64_REDIS};

use super::api::valid_name;
use super::state::Scripting;
use super::vm::{Flavor, Vm};

/// How long library code may run while it loads (Redis's limit for clients).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

const INVALID_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// A function of a library.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub flags: u32,
}

/// A library: its name, its whole code (metadata line included), and what it registers.
#[derive(Debug, PartialEq)]
pub struct LibraryDef {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<FunctionDef>,
}

pub type Library = Arc<LibraryDef>;

/// The libraries of a core.
#[derive(Default, Clone, Debug)]
pub struct Libraries {
    libs: BTreeMap<String, Library>,
    /// Lower-cased function name → its library's name.
    functions: HashMap<String, String>,
}

impl Libraries {
    pub fn iter(&self) -> impl Iterator<Item = &Library> {
        self.libs.values()
    }

    pub fn get(&self, name: &str) -> Option<&Library> {
        self.libs.get(name)
    }

    pub fn len(&self) -> usize {
        self.libs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.libs.is_empty()
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Bytes held by the registry: the libraries' code, names and descriptions (the
    /// interpreter's share is counted with the interpreter).
    pub fn memory(&self) -> usize {
        self.libs
            .values()
            .map(|l| {
                let functions: usize = l
                    .functions
                    .iter()
                    .map(|f| {
                        std::mem::size_of::<FunctionDef>()
                            + 2 * f.name.len()
                            + f.description.as_ref().map_or(0, String::len)
                    })
                    .sum();
                std::mem::size_of::<LibraryDef>() + 2 * l.name.len() + l.code.len() + functions
            })
            .sum()
    }

    /// The library and definition of function `name` (any case).
    pub fn function(&self, name: &[u8]) -> Option<(&Library, &FunctionDef)> {
        let lower = String::from_utf8_lossy(&name.to_ascii_lowercase()).into_owned();
        let lib = self.libs.get(self.functions.get(&lower)?)?;
        let f = lib
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(&lower))?;
        Some((lib, f))
    }

    fn unlink(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        for f in &lib.functions {
            self.functions.remove(&f.name.to_ascii_lowercase());
        }
        Some(lib)
    }

    fn link(&mut self, lib: Library) {
        for f in &lib.functions {
            self.functions
                .insert(f.name.to_ascii_lowercase(), lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    /// Adds `lib`, replacing a library of the same name if `replace`; errors as Redis's.
    pub fn add(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        let old = match self.libs.contains_key(&lib.name) {
            true if !replace => return Err(format!("Library '{}' already exists", lib.name)),
            true => self.unlink(&lib.name),
            false => None,
        };
        if let Some(f) = lib
            .functions
            .iter()
            .find(|f| self.functions.contains_key(&f.name.to_ascii_lowercase()))
        {
            let err = format!("Function {} already exists", f.name);
            if let Some(old) = old {
                self.link(old);
            }
            return Err(err);
        }
        self.link(lib);
        Ok(())
    }

    /// Deletes a library; false if there is none of that name.
    pub fn delete(&mut self, name: &str) -> bool {
        self.unlink(name).is_some()
    }

    /// Joins `other`'s libraries into these (FUNCTION RESTORE APPEND/REPLACE): all or none.
    pub fn join(&mut self, other: Libraries, replace: bool) -> Result<(), String> {
        let mut next = self.clone();
        for lib in other.libs.values() {
            if next.libs.contains_key(&lib.name) {
                if !replace {
                    return Err(format!("Library {} already exists", lib.name));
                }
                next.unlink(&lib.name);
            }
        }
        for lib in other.libs.values() {
            if let Some(f) = lib
                .functions
                .iter()
                .find(|f| next.functions.contains_key(&f.name.to_ascii_lowercase()))
            {
                return Err(format!("Function {} already exists", f.name));
            }
            next.link(lib.clone());
        }
        *self = next;
        Ok(())
    }
}

/// The `#!<engine> name=<name>` line of library code: (engine, name).
pub fn parse_metadata(code: &[u8]) -> Result<(String, String), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match shardis_resp::split_line(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(parts[0].get(2..).unwrap_or_default()).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(format!(
            "Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let name = name.ok_or_else(|| "Library name was not given".to_string())?;
    Ok((engine, name))
}

/// The code after the metadata line (its newline kept).
pub fn body(code: &[u8]) -> &[u8] {
    match code.iter().position(|&c| c == b'\n') {
        Some(end) => &code[end..],
        None => &[],
    }
}

/// Checks and compiles library code in a scratch interpreter: its definition, or Redis's
/// error. `timeout` bounds the run of its top-level code.
pub fn compile(code: Bytes, timeout: Option<Duration>) -> Result<Library, String> {
    let (engine, name) = parse_metadata(&code)?;
    if !valid_name(name.as_bytes()) {
        return Err(INVALID_NAME.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    let mut vm = Vm::new(Flavor::Functions).ok_or("Failed creating the library")?;
    let registered = vm.load_library(body(&code), timeout)?;
    if registered.is_empty() {
        return Err("No functions registered".into());
    }
    let functions = registered
        .iter()
        .map(|r| FunctionDef {
            name: r.name.clone(),
            description: r.description.clone(),
            flags: r.flags,
        })
        .collect();
    Ok(Arc::new(LibraryDef {
        name,
        code,
        functions,
    }))
}

/// Brings the core's functions interpreter up to date with its libraries: loads those that
/// are new or changed, releases those that are gone. Returns the reference of `function`.
pub fn sync(state: &mut Scripting, vm: &mut Vm, function: &str) -> Option<i32> {
    let wanted: Vec<Library> = state.libraries.iter().cloned().collect();
    let stale: Vec<String> = state
        .loaded
        .iter()
        .filter(|(name, (def, _))| {
            state
                .libraries
                .get(name)
                .is_none_or(|l| !Arc::ptr_eq(l, def))
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in stale {
        if let Some((_, refs)) = state.loaded.remove(&name) {
            vm.release(refs.into_iter().map(|(_, r)| r));
        }
    }
    for lib in wanted {
        if state.loaded.contains_key(&lib.name) {
            continue;
        }
        match vm.load_library(body(&lib.code), None) {
            Ok(registered) => {
                let refs = registered
                    .into_iter()
                    .map(|r| (r.name, r.reference))
                    .collect();
                state.loaded.insert(lib.name.clone(), (lib.clone(), refs));
            }
            Err(e) => tracing::warn!("cannot load function library {}: {e}", lib.name),
        }
    }
    let (lib, def) = state.libraries.function(function.as_bytes())?;
    state
        .loaded
        .get(&lib.name)?
        .1
        .iter()
        .find(|(name, _)| *name == def.name)
        .map(|(_, r)| *r)
}

// ---------------------------------------------------------------------------------------------
// FUNCTION DUMP / RESTORE payloads

/// RDB opcode of a library (7.0 GA format: the code alone).
const OPCODE_FUNCTION2: u8 = 245;
/// RDB opcode of the 7.0 release candidates' format (name, engine, description, code).
const OPCODE_FUNCTION: u8 = 246;
/// The RDB version written (Redis 7.0's).
const RDB_VERSION: u16 = 10;

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16384 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// FUNCTION DUMP: every library as an RDB function record, then the RDB version and the
/// CRC64 of all that, as Redis writes it.
pub fn dump(libraries: &Libraries) -> Vec<u8> {
    let mut out = Vec::new();
    for lib in libraries.iter() {
        out.push(OPCODE_FUNCTION2);
        put_len(&mut out, lib.code.len());
        out.extend_from_slice(&lib.code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// A length, or the special encoding number (with the flag set).
    fn len(&mut self) -> Option<(u64, bool)> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => ((first & 0x3f) as u64, false),
            1 => ((((first & 0x3f) as u64) << 8) | self.byte()? as u64, false),
            2 => match first {
                0x80 => (
                    u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64,
                    false,
                ),
                0x81 => (u64::from_be_bytes(self.take(8)?.try_into().ok()?), false),
                _ => return None,
            },
            _ => ((first & 0x3f) as u64, true),
        })
    }

    /// An RDB string: plain, integer-encoded, or LZF-compressed.
    fn string(&mut self) -> Option<Vec<u8>> {
        let (len, special) = self.len()?;
        if !special {
            return Some(self.take(usize::try_from(len).ok()?)?.to_vec());
        }
        match len {
            0 => Some((self.byte()? as i8).to_string().into_bytes()),
            1 => Some(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            2 => Some(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            3 => {
                let clen = usize::try_from(self.len()?.0).ok()?;
                let ulen = usize::try_from(self.len()?.0).ok()?;
                // A library is code: bound what a payload may make us allocate.
                if ulen > 512 << 20 {
                    return None;
                }
                let compressed = self.take(clen)?;
                let out = lzf::decompress(compressed, ulen).ok()?;
                (out.len() == ulen).then_some(out)
            }
            _ => None,
        }
    }
}

/// FUNCTION RESTORE's payload: the libraries it holds (each compiled), or Redis's error.
pub fn restore(payload: &[u8]) -> Result<Libraries, String> {
    let bad = || "DUMP payload version or checksum are wrong".to_string();
    if payload.len() < 10 {
        return Err(bad());
    }
    let footer = payload.len() - 10;
    let version = u16::from_le_bytes([payload[footer], payload[footer + 1]]);
    let crc = u64::from_le_bytes(payload[footer + 2..].try_into().map_err(|_| bad())?);
    if version > RDB_VERSION || CRC64.checksum(&payload[..footer + 2]) != crc {
        return Err(bad());
    }
    let mut r = Reader {
        data: &payload[..footer],
        pos: 0,
    };
    let mut libs = Libraries::default();
    while r.pos < footer {
        let Some(kind) = r.byte() else {
            return Err("can not read data type".into());
        };
        let code = match kind {
            OPCODE_FUNCTION2 => r.string().ok_or("Failed loading library payload")?,
            OPCODE_FUNCTION => {
                let name = r.string().ok_or("Failed loading library name")?;
                let engine = r.string().ok_or("Failed loading engine name")?;
                let (has_desc, _) = r
                    .len()
                    .ok_or("Failed loading library description indicator")?;
                if has_desc != 0 {
                    r.string().ok_or("Failed loading library description")?;
                }
                let blob = r.string().ok_or("Failed loading library blob")?;
                let mut code = b"#!".to_vec();
                code.extend_from_slice(&engine);
                code.extend_from_slice(b" name=");
                code.extend_from_slice(&name);
                code.push(b'\n');
                code.extend_from_slice(&blob);
                code
            }
            _ => return Err("given type is not a function".into()),
        };
        let lib = compile(Bytes::from(code), None)?;
        libs.add(lib, false)?;
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(name: &str, functions: &[&str]) -> Library {
        Arc::new(LibraryDef {
            name: name.into(),
            code: Bytes::new(),
            functions: functions
                .iter()
                .map(|f| FunctionDef {
                    name: f.to_string(),
                    description: None,
                    flags: 0,
                })
                .collect(),
        })
    }

    #[test]
    fn metadata() {
        assert_eq!(
            parse_metadata(b"#!lua name=test\nx"),
            Ok(("lua".into(), "test".into()))
        );
        assert_eq!(
            parse_metadata(b"#!lua name=\"foo\"\nx"),
            Ok(("lua".into(), "foo".into()))
        );
        assert_eq!(
            parse_metadata(b"x").unwrap_err(),
            "Missing library metadata"
        );
        assert_eq!(
            parse_metadata(b"#!lua name=test foo=bar\n").unwrap_err(),
            "Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            parse_metadata(b"#!lua\n").unwrap_err(),
            "Library name was not given"
        );
        assert_eq!(
            parse_metadata(b"#!lua name=foo name=bar\n").unwrap_err(),
            "Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            parse_metadata(b"#! name=test\n"),
            Ok(("".into(), "test".into()))
        );
    }

    #[test]
    fn registry_rules() {
        let mut libs = Libraries::default();
        libs.add(lib("a", &["f1", "f2"]), false).expect("added");
        assert_eq!(
            libs.add(lib("a", &["f3"]), false).unwrap_err(),
            "Library 'a' already exists"
        );
        assert_eq!(
            libs.add(lib("b", &["F1"]), false).unwrap_err(),
            "Function F1 already exists"
        );
        // A failed replace keeps the old library.
        libs.add(lib("c", &["g"]), false).expect("added");
        assert!(libs.add(lib("a", &["g"]), true).is_err());
        assert!(libs.function(b"F2").is_some());
        libs.add(lib("a", &["h"]), true).expect("replaced");
        assert!(libs.function(b"f1").is_none());
        assert!(libs.delete("a"));
        assert!(!libs.delete("a"));
    }

    #[test]
    fn dump_restores() {
        let code = Bytes::from_static(
            b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)",
        );
        let mut libs = Libraries::default();
        libs.add(compile(code, None).expect("compiles"), false)
            .expect("added");
        let payload = dump(&libs);
        let back = restore(&payload).expect("restores");
        assert_eq!(back.len(), 1);
        assert!(back.function(b"f").is_some());
        let mut broken = payload.clone();
        broken[3] ^= 1;
        assert_eq!(
            restore(&broken).unwrap_err(),
            "DUMP payload version or checksum are wrong"
        );
    }
}
