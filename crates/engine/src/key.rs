//! `Key`: an owned byte string behind a thin pointer, for the names of keys and the members
//! of sets, which are many and small.
//!
//! One allocation holds the length as a varint (one byte up to 127, two up to 16383…) and
//! the bytes: an 11-byte key name takes a 16-byte block and 8 bytes where it is stored, where
//! a `Bytes` takes 32 bytes of handle plus its block, and a `Box<[u8]>` 16. Keys are never
//! shared, so there is no reference count; a clone copies.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ptr::NonNull;

pub struct Key {
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

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
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
            Key {
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

impl Drop for Key {
    fn drop(&mut self) {
        let (_, len) = self.shape();
        // SAFETY: the block was allocated by `new` with this layout and is freed once.
        unsafe { dealloc(self.ptr.as_ptr(), layout(len)) }
    }
}

// SAFETY: a `Key` owns its block alone and never mutates it after construction, like a
// `Box<[u8]>`.
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

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Key {
        Key::new(bytes)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Hashes as the byte slice does, so tables keyed by `Key` can be probed with `&[u8]`.
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
        for len in [0, 1, 11, 127, 128, 129, 16_383, 16_384, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let k = Key::new(&bytes);
            assert_eq!(k.as_bytes(), &bytes[..], "{len}");
            assert_eq!(k.block_len(), varint_len(len) + len);
            let c = k.clone();
            drop(k);
            assert_eq!(&*c, &bytes[..]);
        }
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_384), 3);
    }

    #[test]
    fn hashes_and_compares_as_its_bytes() {
        use std::collections::HashSet;
        let mut set = HashSet::new();
        set.insert(Key::new(b"a"));
        set.insert(Key::new(b"bc"));
        assert!(set.contains(&b"bc"[..]));
        assert!(!set.contains(&b"b"[..]));
        assert!(Key::new(b"a") < Key::new(b"b"));
        assert_eq!(Key::new(b""), Key::new(b""));
        assert_eq!(std::mem::size_of::<Key>(), 8);
        assert_eq!(std::mem::size_of::<Option<Key>>(), 8);
    }
}
