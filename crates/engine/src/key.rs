//! Owned byte strings for what there are millions of: key names ([`Key`]) and the members of
//! sets ([`Thin`]). Neither is ever shared, so there is no reference count; a clone copies.
//!
//! - [`Thin`]: one allocation holding the length as a varint (one byte up to 127, two up to
//!   16383…) and the bytes, behind an 8-byte pointer. A 6-byte member takes an 8-byte block,
//!   where a `Bytes` takes 32 bytes of handle plus its block, and a `Box<[u8]>` 16.
//! - [`Key`]: 16 bytes; a name of up to 15 bytes (`user:123456`, `key:42`…) sits inside, with
//!   no allocation at all, and so does a name of exactly 16 bytes whose last byte cannot be
//!   mistaken for a length or the tag (`key:000000012345`: any text); a longer one is a
//!   [`Thin`] (see `db.rs` for the keyspace node). A name inside costs no block and, on a
//!   lookup, no dependent load after the node's.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// A thin owned byte string; see the module documentation.
#[repr(transparent)]
pub struct Thin {
    ptr: NonNull<u8>,
}

/// Bytes of the varint encoding of `n`.
fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn layout(len: usize) -> Layout {
    match varint_len(len)
        .checked_add(len)
        .and_then(|size| Layout::from_size_align(size, 1).ok())
    {
        Some(l) => l,
        // Only a length near the address-space size gets here, which cannot exist.
        None => handle_alloc_error(Layout::new::<u64>()),
    }
}

impl Thin {
    pub fn new(bytes: &[u8]) -> Thin {
        let layout = layout(bytes.len());
        // SAFETY: the layout's size is at least 1 (the varint); the varint and then the bytes
        // are written inside it, exactly filling it.
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                handle_alloc_error(layout);
            }
            let mut n = bytes.len();
            let mut at = 0;
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    p.add(at).write(byte);
                    at += 1;
                    break;
                }
                p.add(at).write(byte | 0x80);
                at += 1;
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(at), bytes.len());
            Thin {
                ptr: NonNull::new_unchecked(p),
            }
        }
    }

    /// The header size and the length.
    fn shape(&self) -> (usize, usize) {
        let p = self.ptr.as_ptr();
        let (mut len, mut shift, mut at) = (0usize, 0u32, 0usize);
        // SAFETY: `new` wrote a well-formed varint at the start of the block; the loop stops
        // at its last byte (no continuation bit), inside the block.
        unsafe {
            loop {
                let byte = p.add(at).read();
                len |= usize::from(byte & 0x7f) << shift;
                at += 1;
                if byte & 0x80 == 0 {
                    return (at, len);
                }
                shift += 7;
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        let (header, len) = self.shape();
        // SAFETY: `new` copied exactly `len` bytes right after the header; they never change.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(header), len) }
    }

    /// The bytes this key's block takes (for MEMORY USAGE).
    pub fn block_len(&self) -> usize {
        let (header, len) = self.shape();
        header + len
    }
}

impl Drop for Thin {
    fn drop(&mut self) {
        let (_, len) = self.shape();
        // SAFETY: the block was allocated by `new` with this layout and is freed once.
        unsafe { dealloc(self.ptr.as_ptr(), layout(len)) }
    }
}

// SAFETY: a `Thin` owns its block alone and never mutates it after construction, like a
// `Box<[u8]>`.
unsafe impl Send for Thin {}
unsafe impl Sync for Thin {}

impl Clone for Thin {
    fn clone(&self) -> Thin {
        Thin::new(self.as_bytes())
    }
}

impl std::ops::Deref for Thin {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Thin {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Thin {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for Thin {
    fn from(bytes: &[u8]) -> Thin {
        Thin::new(bytes)
    }
}

impl PartialEq for Thin {
    fn eq(&self, other: &Thin) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Thin {}

impl PartialOrd for Thin {
    fn partial_cmp(&self, other: &Thin) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Thin {
    fn cmp(&self, other: &Thin) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Hashes as the byte slice does, so tables keyed by `Thin` can be probed with `&[u8]`.
impl Hash for Thin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl std::fmt::Debug for Thin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// Names up to this long live inside the [`Key`], and names one byte longer when
/// [`fills_key`] says so.
pub const INLINE_KEY: usize = 15;

/// Whether a name of 16 bytes fills a [`Key`]: its last byte, where a shorter name keeps its
/// length (0..=15) and a long one the tag `THIN`, is neither.
fn fills_key(bytes: &[u8]) -> bool {
    bytes.len() == INLINE_KEY + 1
        && bytes[INLINE_KEY] > INLINE_KEY as u8
        && bytes[INLINE_KEY] != THIN
}

/// Whether a name lives inside its [`Key`] (no block of its own).
pub fn is_inline(bytes: &[u8]) -> bool {
    bytes.len() <= INLINE_KEY || fills_key(bytes)
}

/// The tag byte of a [`Key`] holding a [`Thin`].
const THIN: u8 = 0xff;

/// A key name: up to 15 bytes in place, else a [`Thin`]; see the module documentation.
pub struct Key {
    repr: Repr,
}

/// The 16 bytes of a key: the name and, last, its length (at most 15); or a name of 16 bytes
/// whose last byte is neither a length nor `THIN`; or a [`Thin`] and the tag `THIN` in that
/// same last byte.
#[repr(C)]
union Repr {
    inline: [u8; 16],
    thin: ManuallyDrop<ThinRepr>,
}

#[repr(C)]
struct ThinRepr {
    thin: ManuallyDrop<Thin>,
    zero: [u8; 7],
    tag: u8,
}

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE_KEY {
            let mut inline = [0u8; 16];
            inline[..bytes.len()].copy_from_slice(bytes);
            inline[15] = bytes.len() as u8;
            return Key {
                repr: Repr { inline },
            };
        }
        if fills_key(bytes) {
            let mut inline = [0u8; 16];
            inline.copy_from_slice(bytes);
            return Key {
                repr: Repr { inline },
            };
        }
        Key {
            repr: Repr {
                thin: ManuallyDrop::new(ThinRepr {
                    thin: ManuallyDrop::new(Thin::new(bytes)),
                    zero: [0; 7],
                    tag: THIN,
                }),
            },
        }
    }

    fn tag(&self) -> u8 {
        // SAFETY: both forms write the last byte as a plain byte (the length or `THIN`).
        unsafe { self.repr.inline[15] }
    }

    /// The [`Thin`] of a long name.
    fn thin(&self) -> Option<&Thin> {
        // SAFETY: the tag says which form was written; a `THIN` key was built with one.
        (self.tag() == THIN).then(|| unsafe { &*self.repr.thin.thin })
    }

    pub fn as_bytes(&self) -> &[u8] {
        let tag = self.tag();
        if tag == THIN {
            // SAFETY: a `THIN` key was built with a `Thin`.
            return unsafe { self.repr.thin.thin.as_bytes() };
        }
        // A last byte past the lengths is the last of a 16-byte name (see `fills_key`).
        let len = if usize::from(tag) <= INLINE_KEY {
            usize::from(tag)
        } else {
            INLINE_KEY + 1
        };
        // SAFETY: an inline key wrote its 16 bytes: the name, and its length unless it fills
        // them.
        unsafe { &self.repr.inline[..len] }
    }

    /// Heap bytes this key holds beyond itself (for MEMORY USAGE): its thin block, if any.
    pub fn heap_len(&self) -> usize {
        self.thin().map_or(0, Thin::block_len)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.tag() == THIN {
            // SAFETY: a `THIN` key owns its `Thin`, dropped once, here.
            unsafe { ManuallyDrop::drop(&mut (*self.repr.thin).thin) }
        }
    }
}

// SAFETY: like `Thin`, a `Key` owns what it points to alone and never mutates it.
unsafe impl Send for Key {}
unsafe impl Sync for Key {}

impl Clone for Key {
    fn clone(&self) -> Key {
        Key::new(self.as_bytes())
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

/// Hashes as the byte slice does, so the keyspace can be probed with `&[u8]`.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_class() {
        for len in [0, 1, 11, 15, 16, 127, 128, 129, 16_383, 16_384, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let t = Thin::new(&bytes);
            assert_eq!(t.as_bytes(), &bytes[..], "{len}");
            assert_eq!(t.block_len(), varint_len(len) + len);
            let c = t.clone();
            drop(t);
            assert_eq!(&*c, &bytes[..]);
            let k = Key::new(&bytes);
            assert_eq!(k.as_bytes(), &bytes[..], "{len}");
            assert_eq!(k.heap_len() == 0, is_inline(&bytes), "{len}");
            let c = k.clone();
            drop(k);
            assert_eq!(&*c, &bytes[..]);
        }
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_384), 3);
    }

    #[test]
    fn sixteen_byte_names_fill_the_key_unless_the_last_byte_is_ambiguous() {
        for last in [0u8, 1, 15, 16, 17, b'0', b'9', b'z', 0x80, 0xfe, 0xff] {
            let mut name = *b"key:00000001234_";
            name[15] = last;
            let k = Key::new(&name);
            assert_eq!(k.as_bytes(), &name[..], "{last}");
            let inline = last > 15 && last != 0xff;
            assert_eq!(is_inline(&name), inline, "{last}");
            assert_eq!(k.heap_len() == 0, inline, "{last}");
            assert_eq!(k, Key::new(&name));
            assert_eq!(k.clone().as_bytes(), &name[..]);
        }
        assert_eq!(&*Key::new(b"key:000000012345"), b"key:000000012345");
        assert!(is_inline(b"key:000000012345"));
        assert!(!is_inline(b"key:0000000123456"));
    }

    #[test]
    fn hashes_and_compares_as_its_bytes() {
        use std::collections::HashSet;
        let mut set = HashSet::new();
        set.insert(Thin::new(b"a"));
        set.insert(Thin::new(b"bc"));
        assert!(set.contains(&b"bc"[..]));
        assert!(!set.contains(&b"b"[..]));
        assert!(Thin::new(b"a") < Thin::new(b"b"));
        assert_eq!(Thin::new(b""), Thin::new(b""));
        assert_eq!(std::mem::size_of::<Thin>(), 8);
        assert_eq!(std::mem::size_of::<Option<Thin>>(), 8);
        let long = [b'x'; 40];
        let mut keys = HashSet::new();
        keys.insert(Key::new(b"short"));
        keys.insert(Key::new(&long));
        assert!(keys.contains(&b"short"[..]) && keys.contains(&long[..]));
        assert!(!keys.contains(&long[..39]));
        assert_eq!(std::mem::size_of::<Key>(), 16);
    }
}
