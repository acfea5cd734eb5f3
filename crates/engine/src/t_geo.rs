//! Geo commands (Redis's `geo.c`, `geohash.c`, `geohash_helper.c`): GEOADD, GEODIST,
//! GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the `_RO`
//! forms.
//!
//! A geo set is a sorted set whose scores are 52-bit geohashes: longitude and latitude, each
//! scaled to 26 bits over [-180, 180] and [-85.05112878, 85.05112878], interleaved (latitude
//! in the even bits). A search covers its circle or box with the cell of the centre and its
//! eight neighbours at a precision chosen from the radius, reads each cell as a score range,
//! and keeps the points whose haversine distance puts them inside the shape.
//!
//! Replies must be Redis's to the bit, ties included, so every step follows Redis's
//! arithmetic in the same order with the same constants (the same libm functions give the
//! same roundings), its C conversions of odd scores, and its two sorts: glibc's stable merge
//! sort for a full sort and Redis's partial quicksort when COUNT keeps fewer points than
//! were found.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::error;
use crate::num::{self, LongDouble};
use crate::order_tree::{Item, Member};
use crate::shard::Ctx;
use crate::t_zset::{self, Limits, ZSetValue};
use crate::value::Value;

pub static COMMANDS: &[Registration] = &[
    Registration::shard("geoadd", geoadd),
    Registration::shard("geodist", geodist),
    Registration::shard("geohash", geohash),
    Registration::shard("geopos", geopos),
    Registration::shard("georadius", georadius).with_getkeys(radius_keys),
    Registration::shard("georadius_ro", georadius_ro),
    Registration::shard("georadiusbymember", georadiusbymember).with_getkeys(radius_keys),
    Registration::shard("georadiusbymember_ro", georadiusbymember_ro),
    Registration::shard("geosearch", geosearch),
    Registration::shard("geosearchstore", geosearchstore),
];

const BAD_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
const BAD_MEMBER: &str = "ERR could not decode requested zset member";

// ---------------------------------------------------------------------------------------------
// Geohash
// ---------------------------------------------------------------------------------------------

const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const LON_MIN: f64 = -180.0;
const LON_MAX: f64 = 180.0;
/// Bits per coordinate of a stored score.
const STEP_MAX: u8 = 26;
/// Redis's Earth radius (the quadratic mean radius of WGS-84).
const EARTH_RADIUS_M: f64 = 6372797.560856;
/// Half the Earth's circumference in Web Mercator metres.
const MERCATOR_MAX: f64 = 20037726.37;
const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;

fn rad(deg: f64) -> f64 {
    deg * DEG_TO_RAD
}

fn deg(rad: f64) -> f64 {
    rad / DEG_TO_RAD
}

/// A cell: the interleaved bits of its two coordinates, `step` bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    bits: u64,
    step: u8,
}

#[derive(Debug, Clone, Copy)]
struct Range {
    min: f64,
    max: f64,
}

const WGS84_LON: Range = Range {
    min: LON_MIN,
    max: LON_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};
/// The ranges of standard geohash strings (GEOHASH re-encodes with these).
const STANDARD_LAT: Range = Range {
    min: -90.0,
    max: 90.0,
};

/// The bounds of a cell.
#[derive(Debug, Clone, Copy)]
struct Area {
    lon: Range,
    lat: Range,
}

/// Spreads the 32 bits of `v` to the even bits of a u64.
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

/// Gathers the even bits of `v` into a u32.
fn gather(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    x = (x | (x >> 16)) & 0x0000_0000_ffff_ffff;
    x as u32
}

/// The cell of `step` bits holding a point, or None outside the ranges (or of WGS-84).
fn encode(lon_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    let outside = |v: f64, r: Range| v < r.min || v > r.max;
    if step == 0
        || step > 32
        || outside(lon, WGS84_LON)
        || outside(lat, WGS84_LAT)
        || outside(lon, lon_range)
        || outside(lat, lat_range)
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let lon_offset = (lon - lon_range.min) / (lon_range.max - lon_range.min) * scale;
    // Redis converts to uint32_t through a 64-bit truncation.
    let lat_bits = lat_offset as i64 as u32;
    let lon_bits = lon_offset as i64 as u32;
    Some(Cell {
        bits: spread(lat_bits) | (spread(lon_bits) << 1),
        step,
    })
}

fn decode(lon_range: Range, lat_range: Range, cell: Cell) -> Area {
    let lat_cell = gather(cell.bits);
    let lon_cell = gather(cell.bits >> 1);
    let cells = (1u64 << cell.step) as f64;
    let bound = |r: Range, i: u32| r.min + (i as f64 * 1.0 / cells) * (r.max - r.min);
    Area {
        lat: Range {
            min: bound(lat_range, lat_cell),
            max: bound(lat_range, lat_cell.wrapping_add(1)),
        },
        lon: Range {
            min: bound(lon_range, lon_cell),
            max: bound(lon_range, lon_cell.wrapping_add(1)),
        },
    }
}

/// The centre of an area, clamped to the WGS-84 ranges: (longitude, latitude).
fn centre(area: Area) -> (f64, f64) {
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// Converts a double to i64 as C does on x86-64: truncated when it fits, else (NaN
/// included) the "integer indefinite" value, i64::MIN.
fn c_double_to_i64(v: f64) -> i64 {
    const TWO_POW_63: f64 = (1u64 << 63) as f64;
    if (-TWO_POW_63..TWO_POW_63).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// Converts a double to u64 as Redis's `(uint64_t)` cast does on x86-64: below 2^63 through
/// the signed conversion (so negative values wrap), above it offset by 2^63. Any score a
/// client stored in a sorted set decodes as Redis decodes it.
fn c_double_to_u64(v: f64) -> u64 {
    const TWO_POW_63: f64 = (1u64 << 63) as f64;
    if v < TWO_POW_63 {
        c_double_to_i64(v) as u64
    } else {
        (c_double_to_i64(v - TWO_POW_63) as u64) ^ (1 << 63)
    }
}

/// The position a score stands for: the centre of its 26-bit cell.
fn decode_score(score: f64) -> (f64, f64) {
    let cell = Cell {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    centre(decode(WGS84_LON, WGS84_LAT, cell))
}

/// The score of a cell: its bits left-aligned to 52 bits.
fn align52(cell: Cell) -> u64 {
    cell.bits << (52 - cell.step as u32 * 2)
}

/// Moves a cell one step east (`d > 0`) or west, wrapping around.
fn move_x(cell: &mut Cell, d: i8) {
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let shift = 64 - cell.step as u32 * 2;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    let x = if d > 0 {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    cell.bits = (x & (0xaaaa_aaaa_aaaa_aaaa >> shift)) | y;
}

/// Moves a cell one step north (`d > 0`) or south, wrapping around.
fn move_y(cell: &mut Cell, d: i8) {
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let shift = 64 - cell.step as u32 * 2;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    let y = if d > 0 {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    cell.bits = x | (y & (0x5555_5555_5555_5555 >> shift));
}

fn neighbour(cell: Cell, dx: i8, dy: i8) -> Cell {
    let mut c = cell;
    if dx != 0 {
        move_x(&mut c, dx);
    }
    if dy != 0 {
        move_y(&mut c, dy);
    }
    c
}

/// The precision of the cells a search of `range_m` metres around latitude `lat` reads.
fn steps_for_radius(mut range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_m < MERCATOR_MAX {
        range_m *= 2.0;
        step += 1;
    }
    step -= 2;
    // Cells are narrower towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

// ---------------------------------------------------------------------------------------------
// Distances and shapes
// ---------------------------------------------------------------------------------------------

/// The distance along a meridian between two latitudes.
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (rad(lat2) - rad(lat1)).abs()
}

/// The haversine great-circle distance in metres.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((rad(lon2) - rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = rad(lat1);
    let lat2r = rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

#[derive(Debug, Clone, Copy)]
enum Extent {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search area: its centre, its size in `unit`s, and the metres in one unit.
#[derive(Debug, Clone, Copy)]
struct Shape {
    lon: f64,
    lat: f64,
    unit: f64,
    extent: Extent,
}

impl Shape {
    /// The distance of a point from the centre if it is inside.
    fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.extent {
            Extent::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                // Only "farther than the radius" is outside: a NaN distance (asin of a
                // rounding above 1) counts as inside, as in Redis.
                match d.partial_cmp(&(r * self.unit)) {
                    Some(std::cmp::Ordering::Greater) => None,
                    _ => Some(d),
                }
            }
            Extent::Box { width, height } => {
                let (width_m, height_m) = (width * self.unit, height * self.unit);
                if lat_distance(lat, self.lat) > height_m / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > width_m / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// (min lon, min lat, max lon, max lat) of the area, its sides bent by the latitude.
    fn bounds(&self) -> [f64; 4] {
        let (half_height, half_width) = match self.extent {
            Extent::Radius(r) => (self.unit * r, self.unit * r),
            Extent::Box { width, height } => {
                (self.unit * (height / 2.0), self.unit * (width / 2.0))
            }
        };
        let lat_delta = deg(half_height / EARTH_RADIUS_M);
        let lon_delta_top = deg(half_width / EARTH_RADIUS_M / rad(self.lat + lat_delta).cos());
        let lon_delta_bottom = deg(half_width / EARTH_RADIUS_M / rad(self.lat - lat_delta).cos());
        let lon_delta = if self.lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        [
            self.lon - lon_delta,
            self.lat - lat_delta,
            self.lon + lon_delta,
            self.lat + lat_delta,
        ]
    }

    /// The cells to read, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW); None for
    /// neighbours that cannot hold a point of the area.
    fn cells(&self) -> [Option<Cell>; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius_m = match self.extent {
            Extent::Radius(r) => r,
            Extent::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.unit;
        let mut step = steps_for_radius(radius_m, self.lat);
        let at = |step| encode(WGS84_LON, WGS84_LAT, self.lon, self.lat, step);
        let Some(mut cell) = at(step) else {
            return [None; 9];
        };
        // Step down once if a side neighbour does not reach the edge of the area.
        let reach = |cell: Cell, dx, dy| decode(WGS84_LON, WGS84_LAT, neighbour(cell, dx, dy));
        if step > 1
            && (reach(cell, 0, 1).lat.max < max_lat
                || reach(cell, 0, -1).lat.min > min_lat
                || reach(cell, 1, 0).lon.max < max_lon
                || reach(cell, -1, 0).lon.min > min_lon)
        {
            step -= 1;
            let Some(c) = at(step) else {
                return [None; 9];
            };
            cell = c;
        }
        let area = decode(WGS84_LON, WGS84_LAT, cell);
        let prune = step >= 2;
        let no_south = prune && area.lat.min < min_lat;
        let no_north = prune && area.lat.max > max_lat;
        let no_west = prune && area.lon.min < min_lon;
        let no_east = prune && area.lon.max > max_lon;
        let n = |dx: i8, dy: i8, skip: bool| (!skip).then(|| neighbour(cell, dx, dy));
        [
            Some(cell),
            n(0, 1, no_north),
            n(0, -1, no_south),
            n(1, 0, no_east),
            n(-1, 0, no_west),
            n(1, 1, no_north || no_east),
            n(-1, 1, no_north || no_west),
            n(1, -1, no_south || no_east),
            n(-1, -1, no_south || no_west),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

/// A point found by a search.
#[derive(Debug, Clone)]
struct Found {
    lon: f64,
    lat: f64,
    /// Metres from the centre.
    dist: f64,
    score: f64,
    member: Member,
}

/// The points of `z` inside `shape`, cell after cell in score order; stops once `limit`
/// points are found (0: no limit).
fn search(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let full = |found: &Vec<Found>| limit != 0 && found.len() >= limit;
    let mut last: Option<Cell> = None;
    for (i, cell) in shape.cells().into_iter().enumerate() {
        let Some(cell) = cell else { continue };
        // Huge areas can make consecutive neighbours the same cell (Redis compares with the
        // last cell read after the centre).
        if i > 0 && last == Some(cell) {
            continue;
        }
        if full(&found) {
            break;
        }
        let min = align52(cell) as f64;
        let max = align52(Cell {
            bits: cell.bits.wrapping_add(1),
            step: cell.step,
        }) as f64;
        let lo = z.count_while(|item| item.score < min);
        let hi = z.count_while(|item| item.score < max);
        z.for_range(lo, hi, &mut |item: &Item| {
            if full(&found) {
                return;
            }
            let (lon, lat) = decode_score(item.score);
            if let Some(dist) = shape.contains(lon, lat) {
                found.push(Found {
                    lon,
                    lat,
                    dist,
                    score: item.score,
                    member: item.member.clone(),
                });
            }
        });
        last = (i > 0).then_some(cell);
    }
    found
}

/// Redis's distance comparator (`sort_gp_asc`): greater, equal, else less (so NaN sorts as
/// less than anything).
fn cmp_dist(a: f64, b: f64) -> i32 {
    if a > b {
        1
    } else if a == b {
        0
    } else {
        -1
    }
}

/// glibc's `qsort`, a stable top-down merge sort (left half `n / 2`), over `v`.
fn merge_sort(v: &mut [usize], cmp: &impl Fn(usize, usize) -> i32) {
    let mut tmp = vec![0usize; v.len()];
    merge_sort_with(v, &mut tmp, cmp);
}

fn merge_sort_with(v: &mut [usize], tmp: &mut [usize], cmp: &impl Fn(usize, usize) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort_with(&mut v[..n1], tmp, cmp);
    merge_sort_with(&mut v[n1..], tmp, cmp);
    let (mut i, mut j, mut k) = (0, n1, 0);
    while i < n1 && j < n {
        if cmp(v[i], v[j]) <= 0 {
            tmp[k] = v[i];
            i += 1;
        } else {
            tmp[k] = v[j];
            j += 1;
        }
        k += 1;
    }
    // What is left of the right half is already in place.
    tmp[k..k + n1 - i].copy_from_slice(&v[i..n1]);
    let filled = k + n1 - i;
    v[..filled].copy_from_slice(&tmp[..filled]);
}

/// Redis's `pqsort`: Bentley and McIlroy's quicksort that only sorts the parts that
/// overlap positions `lo..=hi`. The same comparisons and swaps in the same order, so points
/// at equal distances come out as in Redis. Pending parts go on a heap stack, not the call
/// stack.
fn partial_sort(v: &mut [usize], cmp: &impl Fn(usize, usize) -> i32, lo: usize, hi: usize) {
    let med3 = |a: &[usize], x: usize, y: usize, z: usize| -> usize {
        if cmp(a[x], a[y]) < 0 {
            if cmp(a[y], a[z]) < 0 {
                y
            } else if cmp(a[x], a[z]) < 0 {
                z
            } else {
                x
            }
        } else if cmp(a[y], a[z]) > 0 {
            y
        } else if cmp(a[x], a[z]) < 0 {
            x
        } else {
            z
        }
    };
    let vecswap = |a: &mut [usize], i: usize, j: usize, n: usize| {
        for k in 0..n {
            a.swap(i + k, j + k);
        }
    };
    let wanted = |start: usize, len: usize| !(hi < start || lo >= start + len);
    let mut pending = vec![(0usize, v.len())];
    while let Some((start, n)) = pending.pop() {
        let a = &mut v[start..start + n];
        if n < 7 {
            for m in 1..n {
                let mut l = m;
                while l > 0 && cmp(a[l - 1], a[l]) > 0 {
                    a.swap(l, l - 1);
                    l -= 1;
                }
            }
            continue;
        }
        let mut pm = n / 2;
        if n > 7 {
            let mut pl = 0;
            let mut pn = n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(a, pl, pl + d, pl + 2 * d);
                pm = med3(a, pm - d, pm, pm + d);
                pn = med3(a, pn - 2 * d, pn - d, pn);
            }
            pm = med3(a, pl, pm, pn);
        }
        a.swap(0, pm);
        let (mut pa, mut pb) = (1, 1);
        let (mut pc, mut pd) = (n - 1, n - 1);
        loop {
            while pb <= pc {
                let r = cmp(a[pb], a[0]);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    a.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = cmp(a[pc], a[0]);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    a.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            a.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let r = pa.min(pb - pa);
        vecswap(a, 0, pb - r, r);
        let r = (pd - pc).min(n - pd - 1);
        vecswap(a, pb, n - r, r);
        let left = pb - pa;
        let right = pd - pc;
        if right > 1 && wanted(start + n - right, right) {
            pending.push((start + n - right, right));
        }
        if left > 1 && wanted(start, left) {
            pending.push((start, left));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Argument parsing and formatting
// ---------------------------------------------------------------------------------------------

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Metres per unit.
fn parse_unit(arg: &[u8]) -> Result<f64, Reply> {
    if eq(arg, "m") {
        Ok(1.0)
    } else if eq(arg, "km") {
        Ok(1000.0)
    } else if eq(arg, "ft") {
        Ok(0.3048)
    } else if eq(arg, "mi") {
        Ok(1609.34)
    } else {
        Err(Reply::err(BAD_UNIT))
    }
}

fn parse_float(arg: &[u8], msg: &'static str) -> Result<f64, Reply> {
    num::parse_f64(arg).ok_or(Reply::err(msg))
}

/// A longitude and latitude pair, checked against the WGS-84 ranges Redis can index.
fn parse_lon_lat(args: &[Bytes]) -> Result<(f64, f64), Reply> {
    let lon = parse_float(&args[0], error::NOT_FLOAT)?;
    let lat = parse_float(&args[1], error::NOT_FLOAT)?;
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(Reply::error(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// `<radius> <unit>`: (radius, metres per unit).
fn parse_radius(args: &[Bytes]) -> Result<(f64, f64), Reply> {
    let r = parse_float(&args[0], "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(Reply::err("ERR radius cannot be negative"));
    }
    Ok((r, parse_unit(&args[1])?))
}

/// `<width> <height> <unit>`: (width, height, metres per unit).
fn parse_box(args: &[Bytes]) -> Result<(f64, f64, f64), Reply> {
    let w = parse_float(&args[0], "ERR need numeric width")?;
    let h = parse_float(&args[1], "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(Reply::err("ERR height or width cannot be negative"));
    }
    Ok((w, h, parse_unit(&args[2])?))
}

/// The position of a member of a geo set.
fn member_position(z: &ZSetValue, member: &[u8]) -> Option<(f64, f64)> {
    z.score(member).map(decode_score)
}

/// A distance as Redis prints it: rounded (half to even) to 4 decimals, always 4 decimals.
fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    // llrint: rounded half to even, i64::MIN for what does not fit.
    let n = c_double_to_i64((d * 10000.0).round_ties_even());
    let sign = if n < 0 { "-" } else { "" };
    let v = n.unsigned_abs();
    format!("{sign}{}.{:04}", v / 10000, v % 10000)
}

fn distance_reply(d: f64) -> Reply {
    Reply::Bulk(Bytes::from(format_distance(d)))
}

/// A coordinate as Redis replies with it: the exact value printed with 17 decimals,
/// trailing zeros dropped, as a bulk string in RESP2. In RESP3 Redis sends that same text as
/// a double; `Reply` has no double with its own text yet, so RESP3 gets the same value in
/// the encoder's `%.17g` form.
fn coordinate_reply(v: f64, resp3: bool) -> Reply {
    if resp3 {
        Reply::Double(v)
    } else {
        Reply::Bulk(Bytes::from(LongDouble::from_f64(v).to_human()))
    }
}

fn position_reply((lon, lat): (f64, f64), resp3: bool) -> Reply {
    Reply::Array(vec![
        coordinate_reply(lon, resp3),
        coordinate_reply(lat, resp3),
    ])
}

/// The geo set at `key`: Ok(None) if absent, WRONGTYPE for another type.
fn read<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c ZSetValue>, Reply> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(error::wrongtype()),
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// GEORADIUS[BYMEMBER]'s keys as Redis's `georadiusGetKeys` finds them: the source, and the
/// target of the last STORE or STOREDIST, which is the one the command writes. (The key
/// specs name the first target of each keyword, which is not the written key when a target
/// is itself spelled STORE or STOREDIST.)
pub fn radius_keys(args: &[Bytes], out: &mut Vec<usize>) {
    if args.len() < 2 {
        return;
    }
    out.push(1);
    let mut store = None;
    let mut i = 5;
    while i < args.len() {
        if (eq(&args[i], "store") || eq(&args[i], "storedist")) && i + 1 < args.len() {
            store = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    out.extend(store);
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD of the members at the
/// geohash scores of their positions.
pub fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < args.len() {
        let a = &args[first];
        if eq(a, "nx") {
            nx = true;
        } else if eq(a, "xx") {
            xx = true;
        } else if !eq(a, "ch") {
            break;
        }
        first += 1;
    }
    let triples = &args[first..];
    if !triples.len().is_multiple_of(3) || (nx && xx) {
        return error::syntax();
    }
    let mut zadd_args: Vec<Bytes> = Vec::with_capacity(first + triples.len() / 3 * 2);
    zadd_args.push(Bytes::from_static(b"zadd"));
    zadd_args.extend_from_slice(&args[1..first]);
    for t in triples.chunks_exact(3) {
        let (lon, lat) = match parse_lon_lat(&t[..2]) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let Some(cell) = encode(WGS84_LON, WGS84_LAT, lon, lat, STEP_MAX) else {
            return error::syntax();
        };
        zadd_args.push(Bytes::from(align52(cell).to_string()));
        zadd_args.push(t[2].clone());
    }
    t_zset::zadd(ctx, &zadd_args)
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
pub fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let unit = match args.len() {
        4 => 1.0,
        5 => match parse_unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        _ => return error::syntax(),
    };
    let z = match read(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    match (member_position(z, &args[2]), member_position(z, &args[3])) {
        (Some((lon1, lat1)), Some((lon2, lat2))) => {
            distance_reply(distance(lon1, lat1, lon2, lat2) / unit)
        }
        _ => Reply::Nil,
    }
}

/// GEOHASH key [member ...]: standard 11-character geohash strings. Positions are decoded
/// from the stored cells and re-encoded over the standard latitude range, so the strings
/// are those of other geohash tools; the last character is always '0' (52 bits only).
pub fn geohash(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let z = match read(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let hash_of = |(lon, lat)| {
        let bits = encode(WGS84_LON, STANDARD_LAT, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
        let mut text = [b'0'; 11];
        for (i, ch) in text.iter_mut().take(10).enumerate() {
            *ch = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
        }
        Reply::Bulk(Bytes::copy_from_slice(&text))
    };
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| member_position(z, m))
                    .map_or(Reply::Nil, hash_of)
            })
            .collect(),
    )
}

/// GEOPOS key [member ...]
pub fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let resp3 = ctx.resp3;
    let z = match read(ctx, &args[1]) {
        Ok(z) => z,
        Err(e) => return e,
    };
    Reply::Array(
        args[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| member_position(z, m))
                    .map_or(Reply::NilArray, |p| position_reply(p, resp3))
            })
            .collect(),
    )
}

/// Which command of the search family runs, and so how its arguments read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS[_RO] key longitude latitude radius unit ...
    Radius { store_allowed: bool },
    /// GEORADIUSBYMEMBER[_RO] key member radius unit ...
    RadiusByMember { store_allowed: bool },
    /// GEOSEARCH key FROMMEMBER|FROMLONLAT BYRADIUS|BYBOX ...
    Search,
    /// GEOSEARCHSTORE destination key ...
    SearchStore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Unsorted,
    Asc,
    Desc,
}

pub fn georadius(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search_generic(
        ctx,
        args,
        Form::Radius {
            store_allowed: true,
        },
    )
}

pub fn georadius_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search_generic(
        ctx,
        args,
        Form::Radius {
            store_allowed: false,
        },
    )
}

pub fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search_generic(
        ctx,
        args,
        Form::RadiusByMember {
            store_allowed: true,
        },
    )
}

pub fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search_generic(
        ctx,
        args,
        Form::RadiusByMember {
            store_allowed: false,
        },
    )
}

pub fn geosearch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, Form::Search)
}

pub fn geosearchstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    search_generic(ctx, args, Form::SearchStore)
}

/// What a search was asked for.
struct Request<'a> {
    /// None when the source key is missing and the centre could not be read.
    shape: Option<Shape>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    order: Order,
    count: usize,
    any: bool,
    store: Option<&'a Bytes>,
    store_dist: bool,
}

/// Parses a search command as Redis's `georadiusGeneric` does, in the same order (so the
/// same error wins when several apply).
fn parse_request<'a>(
    args: &'a [Bytes],
    form: Form,
    z: Option<&ZSetValue>,
) -> Result<Request<'a>, Reply> {
    let mut req = Request {
        shape: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        order: Order::Unsorted,
        count: 0,
        any: false,
        store: None,
        store_dist: false,
    };
    let mut centre: Option<(f64, f64)> = None;
    let mut extent: Option<(Extent, f64)> = None;
    let base = match form {
        Form::Radius { .. } => {
            centre = Some(parse_lon_lat(&args[2..4])?);
            let (r, unit) = parse_radius(&args[4..6])?;
            extent = Some((Extent::Radius(r), unit));
            6
        }
        Form::RadiusByMember { .. } => {
            if let Some(z) = z {
                centre = Some(member_position(z, &args[2]).ok_or(Reply::err(BAD_MEMBER))?);
                let (r, unit) = parse_radius(&args[3..5])?;
                extent = Some((Extent::Radius(r), unit));
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => {
            req.store = Some(&args[1]);
            3
        }
    };
    let searching = matches!(form, Form::Search | Form::SearchStore);
    let store_option = matches!(
        form,
        Form::Radius {
            store_allowed: true
        } | Form::RadiusByMember {
            store_allowed: true
        }
    );
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let opts = &args[base..];
    let mut i = 0;
    while i < opts.len() {
        let arg = &opts[i];
        let left = opts.len() - i - 1;
        if eq(arg, "withdist") {
            req.with_dist = true;
        } else if eq(arg, "withhash") {
            req.with_hash = true;
        } else if eq(arg, "withcoord") {
            req.with_coord = true;
        } else if eq(arg, "any") {
            req.any = true;
        } else if eq(arg, "asc") {
            req.order = Order::Asc;
        } else if eq(arg, "desc") {
            req.order = Order::Desc;
        } else if eq(arg, "count") && left >= 1 {
            let n = num::parse_i64(&opts[i + 1]).ok_or_else(error::not_integer)?;
            if n <= 0 {
                return Err(Reply::err("ERR COUNT must be > 0"));
            }
            req.count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 1;
        } else if (eq(arg, "store") || eq(arg, "storedist")) && left >= 1 && store_option {
            req.store = Some(&opts[i + 1]);
            req.store_dist = eq(arg, "storedist");
            i += 1;
        } else if eq(arg, "storedist") && form == Form::SearchStore {
            req.store_dist = true;
        } else if eq(arg, "frommember") && left >= 1 && searching && !from_lonlat {
            // With no source key the member is not looked up: the reply is empty anyway.
            if let Some(z) = z {
                centre = Some(member_position(z, &opts[i + 1]).ok_or(Reply::err(BAD_MEMBER))?);
            }
            from_member = true;
            i += 1;
        } else if eq(arg, "fromlonlat") && left >= 2 && searching && !from_member {
            centre = Some(parse_lon_lat(&opts[i + 1..i + 3])?);
            from_lonlat = true;
            i += 2;
        } else if eq(arg, "byradius") && left >= 2 && searching && !by_box {
            let (r, unit) = parse_radius(&opts[i + 1..i + 3])?;
            extent = Some((Extent::Radius(r), unit));
            by_radius = true;
            i += 2;
        } else if eq(arg, "bybox") && left >= 3 && searching && !by_radius {
            let (w, h, unit) = parse_box(&opts[i + 1..i + 4])?;
            extent = Some((
                Extent::Box {
                    width: w,
                    height: h,
                },
                unit,
            ));
            by_box = true;
            i += 3;
        } else {
            return Err(error::syntax());
        }
        i += 1;
    }
    if req.store.is_some() && (req.with_dist || req.with_hash || req.with_coord) {
        return Err(Reply::err(if form == Form::SearchStore {
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        }));
    }
    let name = || String::from_utf8_lossy(&args[0]).into_owned();
    if searching && !(from_member || from_lonlat) {
        return Err(Reply::error(error::sanitize(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        ))));
    }
    if searching && !(by_radius || by_box) {
        return Err(Reply::error(error::sanitize(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            name()
        ))));
    }
    if req.any && req.count == 0 {
        return Err(Reply::err("ERR the ANY argument requires COUNT argument"));
    }
    if let (Some((lon, lat)), Some((extent, unit))) = (centre, extent) {
        req.shape = Some(Shape {
            lon,
            lat,
            unit,
            extent,
        });
    }
    Ok(req)
}

fn search_generic(ctx: &mut Ctx<'_>, args: &[Bytes], form: Form) -> Reply {
    let src = if form == Form::SearchStore {
        &args[2]
    } else {
        &args[1]
    };
    let resp3 = ctx.resp3;
    let z = match read(ctx, src) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let req = match parse_request(args, form, z) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let (Some(z), Some(shape)) = (z, req.shape) else {
        // No source key.
        return match req.store {
            Some(dst) => {
                ctx.delete(dst, false);
                Reply::Int(0)
            }
            None => Reply::Array(Vec::new()),
        };
    };
    let mut order = req.order;
    if req.count != 0 && order == Order::Unsorted && !req.any {
        order = Order::Asc;
    }
    let found = search(z, &shape, if req.any { req.count } else { 0 });
    if found.is_empty() && req.store.is_none() {
        return Reply::Array(Vec::new());
    }
    let returned = if req.count == 0 {
        found.len()
    } else {
        found.len().min(req.count)
    };
    let mut idx: Vec<usize> = (0..found.len()).collect();
    if order != Order::Unsorted {
        let sign = if order == Order::Asc { 1 } else { -1 };
        let cmp = |a: usize, b: usize| sign * cmp_dist(found[a].dist, found[b].dist);
        if returned == found.len() {
            merge_sort(&mut idx, &cmp);
        } else {
            partial_sort(&mut idx, &cmp, 0, returned - 1);
        }
    }
    let chosen = idx[..returned].iter().map(|&i| &found[i]);
    let Some(dst) = req.store else {
        let options = [req.with_dist, req.with_hash, req.with_coord]
            .iter()
            .filter(|&&o| o)
            .count();
        let replies = chosen
            .map(|p| {
                let member = Reply::bulk(&p.member);
                if options == 0 {
                    return member;
                }
                let mut entry = Vec::with_capacity(options + 1);
                entry.push(member);
                if req.with_dist {
                    entry.push(distance_reply(p.dist / shape.unit));
                }
                if req.with_hash {
                    entry.push(Reply::Int(p.score as i64));
                }
                if req.with_coord {
                    entry.push(position_reply((p.lon, p.lat), resp3));
                }
                Reply::Array(entry)
            })
            .collect();
        return Reply::Array(replies);
    };
    let items: Vec<Item> = chosen
        .map(|p| {
            let score = if req.store_dist {
                p.dist / shape.unit
            } else {
                p.score
            };
            Item::new(score, p.member.clone())
        })
        .collect();
    if items.is_empty() {
        ctx.delete(dst, false);
    } else {
        let z = ZSetValue::from_items(items, Limits::of(ctx));
        ctx.set(dst, Value::ZSet(z));
        ctx.dirty(returned as u64 - 1);
    }
    Reply::Int(returned as i64)
}

#[cfg(test)]
mod tests;
