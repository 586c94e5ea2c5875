//! Dynamic consistency boundaries: DCB recorders in memory and on SQLite.
//!
//! Queries, conditions and events are read by attribute, so eventsourcing's
//! own `DCBQuery`, `DCBAppendCondition` and `DCBEvent` objects are accepted
//! as well as esox's; events read are built as `esox.dcb.api` objects (or
//! the classes given to the recorder).

pub mod arguments;
mod convert;
mod index;
pub mod memory;
pub mod sqlite;

pub use arguments::{dcb_append_arguments, dcb_read_arguments};
pub use memory::{DCBMemoryCursor, DCBMemoryRecorder};
pub use sqlite::{DCBSqliteCursor, DCBSqliteRecorder};

/// How many events a subscription takes from a recorder at a time.
const SUBSCRIPTION_BATCH: usize = 500;
