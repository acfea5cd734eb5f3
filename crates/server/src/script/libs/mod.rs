//! The libraries Redis bundles into its scripting environment, reimplemented from their
//! documented behaviour: `bit` (LuaBitOp), `struct`, `cmsgpack` (lua-cmsgpack) and `cjson`
//! (lua-cjson).

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;
