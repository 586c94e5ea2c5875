//! The SQL of the SQLite recorders: table layouts (the same as eventsourcing's
//! SQLite module, so either library opens the other's files), inserts and
//! selects. Nothing here touches Python; rows come back as plain Rust data.

use std::borrow::Cow;
use std::ops::Range;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::database::{sqlite_error, DbError, DbResult};
use crate::errors::ErrorKind;

/// The tracking table's name (fixed, as in eventsourcing).
const TRACKING_TABLE: &str = "tracking";
/// eventsourcing marks a tracking table that keeps one row per application
/// with this row; without it, eventsourcing migrates the table.
const MIGRATION_MARK: &str = "__migration__";

/// What a recorder keeps, and the SQL to do it.
pub struct Schema {
    pub events_table: Option<String>,
    /// Events table has rowids (notification ids); else it is WITHOUT ROWID.
    pub notifications: bool,
    pub tracking: bool,
    /// Where the rows live, for error messages.
    pub path: String,
    insert_event: String,
    select_events: [String; 2],
    select_notifications: String,
    max_notification_id: String,
}

/// Whether `name` can be put into SQL as a table name unquoted.
pub fn is_valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// An event to insert: the originator id as stored (32 hex digits for a UUID).
pub struct NewEvent<'a> {
    pub originator_id: Cow<'a, str>,
    pub version: i64,
    pub topic: &'a str,
    pub state: &'a [u8],
}

/// How stored originator ids are read back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    Uuid,
    Text,
}

/// An originator id as read: a UUID's value, or text in `Rows::bytes`.
pub enum RawId {
    Uuid(u128),
    Text(Range<usize>),
}

pub struct RawRow {
    /// Notification id (rowid); 0 for rows of `select_events`.
    pub id: i64,
    pub originator_id: Option<RawId>,
    pub version: i64,
    pub topic: Range<usize>,
    pub state: Range<usize>,
}

/// Selected rows, their text and blobs kept in one buffer.
#[derive(Default)]
pub struct Rows {
    pub bytes: Vec<u8>,
    pub rows: Vec<RawRow>,
}

impl Rows {
    fn push_bytes(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }

    pub fn slice(&self, range: &Range<usize>) -> &[u8] {
        &self.bytes[range.clone()]
    }
}

/// Parses a UUID as 32 hex digits, with or without the four hyphens.
pub fn parse_uuid(text: &[u8]) -> Option<u128> {
    let hyphenated = match text.len() {
        32 => false,
        36 => true,
        _ => return None,
    };
    let mut value: u128 = 0;
    for (i, &b) in text.iter().enumerate() {
        if hyphenated && matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        value = (value << 4) | u128::from((b as char).to_digit(16)?);
    }
    Some(value)
}

/// A UUID in its usual hyphenated form, for messages.
pub fn format_uuid(u: u128) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u >> 96,
        (u >> 80) & 0xffff,
        (u >> 64) & 0xffff,
        (u >> 48) & 0xffff,
        u & 0xffff_ffff_ffff
    )
}

/// An originator id as stored, described for a message.
fn describe_id(stored: &str) -> String {
    match parse_uuid(stored.as_bytes()) {
        Some(u) if stored.len() == 32 => format_uuid(u),
        _ => format!("{stored:?}"),
    }
}

impl Schema {
    pub fn new(
        path: &str,
        events_table: Option<String>,
        notifications: bool,
        tracking: bool,
    ) -> Self {
        let t = events_table.as_deref().unwrap_or("");
        let select_events = |order: &str| {
            format!(
                "SELECT originator_version, topic, state FROM {t} \
                 WHERE originator_id=?1 AND originator_version>?2 AND originator_version<=?3 \
                 ORDER BY originator_version {order} LIMIT ?4"
            )
        };
        Schema {
            insert_event: format!("INSERT INTO {t} VALUES (?1, ?2, ?3, ?4)"),
            select_events: [select_events("ASC"), select_events("DESC")],
            select_notifications: format!(
                "SELECT rowid, originator_id, originator_version, topic, state FROM {t} \
                 WHERE rowid>=?1 AND rowid<=?2"
            ),
            max_notification_id: format!("SELECT MAX(rowid) FROM {t}"),
            events_table,
            notifications,
            tracking,
            path: path.to_owned(),
        }
    }

    fn events_table(&self) -> DbResult<&str> {
        self.events_table.as_deref().ok_or_else(|| {
            DbError::new(
                ErrorKind::Programming,
                "this SQLite recorder has no events table (it only records tracking)",
            )
        })
    }

    fn notifications_table(&self) -> DbResult<&str> {
        let table = self.events_table()?;
        if self.notifications {
            Ok(table)
        } else {
            Err(DbError::new(
                ErrorKind::Programming,
                format!("table {table} in {} keeps no notifications", self.path),
            ))
        }
    }

    fn check_tracking(&self) -> DbResult<()> {
        if self.tracking {
            Ok(())
        } else {
            Err(DbError::new(
                ErrorKind::Programming,
                format!(
                    "this SQLite recorder of {} has no tracking table; \
                     use a tracking or process recorder",
                    self.path
                ),
            ))
        }
    }

    fn create_events_sql(&self, table: &str) -> String {
        let without_rowid = if self.notifications {
            ""
        } else {
            " WITHOUT ROWID"
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (originator_id TEXT, \
             originator_version INTEGER, topic TEXT, state BLOB, \
             PRIMARY KEY (originator_id, originator_version)){without_rowid}"
        )
    }

    /// Whether a table is missing (or the tracking table is of the old
    /// layout): checked before taking the write lock, so that a read-only
    /// file with its tables opens, and processes starting together do not
    /// queue for the lock.
    pub fn tables_missing(&self, db_read: &Connection) -> DbResult<bool> {
        let context = || format!("checking the tables of {}", self.path);
        let exists = |name: &str| -> DbResult<bool> {
            db_read
                .prepare_cached("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1")
                .and_then(|mut s| s.exists([name]))
                .map_err(|e| sqlite_error(e, context()))
        };
        if let Some(table) = &self.events_table {
            if !exists(table)? {
                return Ok(true);
            }
        }
        if self.tracking {
            if !exists(TRACKING_TABLE)? {
                return Ok(true);
            }
            if migration_mark(db_read).map_err(|e| sqlite_error(e, context()))? != Some(1) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Creates missing tables in one write transaction.
    pub fn create_missing_tables(&self, conn: &mut Connection) -> DbResult<()> {
        let context = || format!("creating tables in {}", self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(e, context()))?;
        self.create_tables_in(&tx)?;
        tx.commit().map_err(|e| sqlite_error(e, context()))
    }

    /// Creates missing tables (migrating an older tracking table) in the
    /// caller's write transaction.
    pub fn create_tables_in(&self, conn: &Connection) -> DbResult<()> {
        let context = || format!("creating tables in {}", self.path);
        if let Some(table) = &self.events_table {
            conn.execute_batch(&self.create_events_sql(table))
                .map_err(|e| sqlite_error(e, context()))?;
        }
        if self.tracking {
            create_tracking_table(conn).map_err(|e| sqlite_error(e, context()))?;
        }
        Ok(())
    }

    /// The statements that create this schema's tables (the tracking table
    /// as it is once created; an older one is migrated by `create_tables_in`).
    pub fn create_table_statements(&self) -> Vec<String> {
        let mut statements = Vec::new();
        if let Some(table) = &self.events_table {
            statements.push(self.create_events_sql(table));
        }
        if self.tracking {
            statements.push(CREATE_TRACKING_TABLE.to_owned());
        }
        statements
    }

    /// Inserts a batch of events and a tracking record in one transaction;
    /// returns the events' notification ids (none if the table has no rowids).
    pub fn insert_events(
        &self,
        conn: &mut Connection,
        events: &[NewEvent<'_>],
        tracking: Option<(&str, i64)>,
    ) -> DbResult<Vec<i64>> {
        let context = || {
            format!(
                "inserting stored events into {} of {}",
                self.table_name(),
                self.path
            )
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(e, context()))?;
        let ids = self.insert_events_in(&tx, events, tracking)?;
        tx.commit().map_err(|e| sqlite_error(e, context()))?;
        Ok(ids)
    }

    /// Whether the events table can be inserted into (it exists), checked
    /// by preparing the insert: an empty batch refuses a missing table too.
    pub fn check_insertable(&self, conn: &Connection) -> DbResult<()> {
        if self.events_table.is_some() {
            conn.prepare_cached(&self.insert_event).map_err(|e| {
                sqlite_error(
                    e,
                    format!(
                        "inserting stored events into {} of {}",
                        self.table_name(),
                        self.path
                    ),
                )
            })?;
        }
        Ok(())
    }

    fn table_name(&self) -> &str {
        self.events_table.as_deref().unwrap_or(TRACKING_TABLE)
    }

    /// Inserts a batch of events and a tracking record in the caller's write
    /// transaction; returns the events' notification ids.
    pub fn insert_events_in(
        &self,
        conn: &Connection,
        events: &[NewEvent<'_>],
        tracking: Option<(&str, i64)>,
    ) -> DbResult<Vec<i64>> {
        if !events.is_empty() {
            self.events_table()?;
        }
        if tracking.is_some() {
            self.check_tracking()?;
        }
        let table = self.table_name();
        let context = || format!("inserting stored events into {table} of {}", self.path);
        let mut ids = Vec::with_capacity(if self.notifications { events.len() } else { 0 });
        if !events.is_empty() {
            let mut insert = conn
                .prepare_cached(&self.insert_event)
                .map_err(|e| sqlite_error(e, context()))?;
            for event in events {
                let params = (
                    event.originator_id.as_ref(),
                    event.version,
                    event.topic,
                    event.state,
                );
                if let Err(e) = insert.execute(params) {
                    if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
                        return Err(DbError::new(
                            ErrorKind::Integrity,
                            format!(
                                "stored event already recorded: originator_id {} version {} \
                                 (table {table} of {})",
                                describe_id(&event.originator_id),
                                event.version,
                                self.path
                            ),
                        ));
                    }
                    return Err(sqlite_error(e, context()));
                }
                if self.notifications {
                    ids.push(conn.last_insert_rowid());
                }
            }
        }
        if let Some((application_name, notification_id)) = tracking {
            self.upsert_tracking(conn, application_name, notification_id)?;
        }
        Ok(ids)
    }

    /// Records a tracking position in its own transaction.
    pub fn insert_tracking(
        &self,
        conn: &mut Connection,
        application_name: &str,
        notification_id: i64,
    ) -> DbResult<()> {
        self.check_tracking()?;
        let context = || format!("inserting tracking into {TRACKING_TABLE} of {}", self.path);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(e, context()))?;
        self.upsert_tracking(&tx, application_name, notification_id)?;
        tx.commit().map_err(|e| sqlite_error(e, context()))
    }

    /// One row per application, moved forward only (as eventsourcing does).
    fn upsert_tracking(
        &self,
        conn: &Connection,
        application_name: &str,
        notification_id: i64,
    ) -> DbResult<()> {
        let context = || format!("inserting tracking into {TRACKING_TABLE} of {}", self.path);
        let changed = conn
            .prepare_cached(
                "INSERT INTO tracking VALUES (?1, ?2) ON CONFLICT (application_name) \
                 DO UPDATE SET notification_id=?2 WHERE tracking.notification_id<?2",
            )
            .and_then(|mut s| s.execute((application_name, notification_id)))
            .map_err(|e| sqlite_error(e, context()))?;
        if changed == 0 {
            let max =
                max_tracking_id(conn, application_name).map_err(|e| sqlite_error(e, context()))?;
            return Err(DbError::new(
                ErrorKind::Integrity,
                format!(
                    "tracking already recorded: application {application_name:?} \
                     notification_id {notification_id} is not greater than {}",
                    max.map_or_else(|| "?".to_owned(), |m| m.to_string())
                ),
            ));
        }
        Ok(())
    }

    pub fn max_tracking_id(
        &self,
        conn: &Connection,
        application_name: &str,
    ) -> DbResult<Option<i64>> {
        self.check_tracking()?;
        max_tracking_id(conn, application_name).map_err(|e| {
            sqlite_error(
                e,
                format!("selecting from {TRACKING_TABLE} of {}", self.path),
            )
        })
    }

    /// One originator's events with versions in (gt, lte]; `limit` < 0 means all.
    pub fn select_events(
        &self,
        conn: &Connection,
        originator_id: &str,
        gt: i64,
        lte: i64,
        desc: bool,
        limit: i64,
    ) -> DbResult<Rows> {
        let table = self.events_table()?;
        let context = || format!("selecting stored events from {table} of {}", self.path);
        let fail = |e| sqlite_error(e, context());
        let mut select = conn
            .prepare_cached(&self.select_events[usize::from(desc)])
            .map_err(fail)?;
        let mut cursor = select
            .query((originator_id, gt, lte, limit))
            .map_err(fail)?;
        let mut out = Rows::default();
        while let Some(row) = cursor.next().map_err(fail)? {
            let version: i64 = row.get(0).map_err(fail)?;
            let topic = text_or_blob(row.get_ref(1).map_err(fail)?);
            let state = text_or_blob(row.get_ref(2).map_err(fail)?);
            let (Some(topic), Some(state)) = (topic, state) else {
                return Err(DbError::new(
                    ErrorKind::Data,
                    format!(
                        "stored event of originator_id {} version {version} in {table} of {} \
                         has a NULL topic or state",
                        describe_id(originator_id),
                        self.path
                    ),
                ));
            };
            let topic = out.push_bytes(topic);
            let state = out.push_bytes(state);
            out.rows.push(RawRow {
                id: 0,
                originator_id: None,
                version,
                topic,
                state,
            });
        }
        Ok(out)
    }

    /// Notifications with ids in [first, last], only of `topics` if any,
    /// ascending, at most `limit`.
    pub fn select_notifications(
        &self,
        conn: &Connection,
        first: i64,
        last: i64,
        topics: &[&str],
        limit: i64,
        id_type: IdType,
    ) -> DbResult<Rows> {
        let table = self.notifications_table()?;
        let context = || format!("selecting notifications from {table} of {}", self.path);
        let fail = |e| sqlite_error(e, context());
        let mut sql = self.select_notifications.clone();
        if !topics.is_empty() {
            sql.push_str(" AND topic IN (");
            for i in 0..topics.len() {
                sql.push_str(if i == 0 { "?" } else { ",?" });
            }
            sql.push(')');
        }
        sql.push_str(" ORDER BY rowid LIMIT ?");
        let mut select = conn.prepare_cached(&sql).map_err(fail)?;
        select.raw_bind_parameter(1, first).map_err(fail)?;
        select.raw_bind_parameter(2, last).map_err(fail)?;
        for (i, topic) in topics.iter().enumerate() {
            select.raw_bind_parameter(3 + i, topic).map_err(fail)?;
        }
        select
            .raw_bind_parameter(3 + topics.len(), limit)
            .map_err(fail)?;
        let mut cursor = select.raw_query();
        let mut out = Rows::default();
        while let Some(row) = cursor.next().map_err(fail)? {
            let id: i64 = row.get(0).map_err(fail)?;
            let originator = text_or_blob(row.get_ref(1).map_err(fail)?);
            let version: i64 = row.get(2).map_err(fail)?;
            let topic = text_or_blob(row.get_ref(3).map_err(fail)?);
            let state = text_or_blob(row.get_ref(4).map_err(fail)?);
            let (Some(originator), Some(topic), Some(state)) = (originator, topic, state) else {
                return Err(DbError::new(
                    ErrorKind::Data,
                    format!(
                        "notification {id} in {table} of {} has a NULL originator_id, \
                         topic or state",
                        self.path
                    ),
                ));
            };
            let originator_id = match id_type {
                IdType::Uuid => RawId::Uuid(parse_uuid(originator).ok_or_else(|| {
                    DbError::new(
                        ErrorKind::Data,
                        format!(
                            "notification {id} in {table} of {} has originator_id {:?}, \
                             which is not a UUID (use originator id type \"text\")",
                            self.path,
                            String::from_utf8_lossy(originator)
                        ),
                    )
                })?),
                IdType::Text => RawId::Text(out.push_bytes(originator)),
            };
            let topic = out.push_bytes(topic);
            let state = out.push_bytes(state);
            out.rows.push(RawRow {
                id,
                originator_id: Some(originator_id),
                version,
                topic,
                state,
            });
        }
        Ok(out)
    }

    pub fn max_notification_id(&self, conn: &Connection) -> DbResult<Option<i64>> {
        let table = self.notifications_table()?;
        conn.prepare_cached(&self.max_notification_id)
            .and_then(|mut s| s.query_row([], |row| row.get(0)))
            .map_err(|e| {
                sqlite_error(
                    e,
                    format!(
                        "selecting the max notification id from {table} of {}",
                        self.path
                    ),
                )
            })
    }
}

const CREATE_TRACKING_TABLE: &str = "CREATE TABLE IF NOT EXISTS tracking (application_name TEXT, \
     notification_id INTEGER, PRIMARY KEY (application_name)) WITHOUT ROWID";

fn text_or_blob(value: ValueRef<'_>) -> Option<&[u8]> {
    match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
        _ => None,
    }
}

fn max_tracking_id(conn: &Connection, application_name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT MAX(notification_id) FROM tracking WHERE application_name=?1")?
        .query_row([application_name], |row| row.get(0))
}

fn migration_mark(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT MAX(notification_id) FROM tracking WHERE application_name=?1",
        [MIGRATION_MARK],
        |row| row.get(0),
    )
    .optional()
    .map(Option::flatten)
}

/// Creates the tracking table with one row per application, as eventsourcing
/// does; an older table (a row per tracked notification) is renamed and its
/// largest id per application carried over, as eventsourcing migrates it.
fn create_tracking_table(conn: &Connection) -> rusqlite::Result<()> {
    let exists: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name='tracking'")?
        .exists([])?;
    let mut carried: Vec<(String, i64)> = Vec::new();
    if exists {
        if migration_mark(conn)? == Some(1) {
            return Ok(());
        }
        let mut select = conn.prepare(
            "SELECT application_name, MAX(notification_id) FROM tracking \
             GROUP BY application_name",
        )?;
        carried = select
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut n = 1;
        while conn
            .prepare("SELECT 1 FROM sqlite_master WHERE name=?1")?
            .exists([format!("old{n}_tracking")])?
        {
            n += 1;
        }
        conn.execute_batch(&format!("ALTER TABLE tracking RENAME TO old{n}_tracking"))?;
    }
    conn.execute_batch(CREATE_TRACKING_TABLE)?;
    let mut insert = conn.prepare("INSERT OR REPLACE INTO tracking VALUES (?1, ?2)")?;
    insert.execute((MIGRATION_MARK, 1))?;
    for (application_name, notification_id) in carried {
        if application_name != MIGRATION_MARK {
            insert.execute((application_name, notification_id))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse_with_or_without_hyphens() {
        let u = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128;
        assert_eq!(parse_uuid(b"0123456789abcdef0123456789ABCDEF"), Some(u));
        assert_eq!(parse_uuid(format_uuid(u).as_bytes()), Some(u));
        assert_eq!(parse_uuid(b"0123456789abcdef0123456789abcdeg"), None);
        assert_eq!(parse_uuid(b"0123456789abcdef"), None);
        assert_eq!(parse_uuid(b"01234567-89ab-cdef-0123-456789abcde-"), None);
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(is_valid_table_name("stored_events"));
        assert!(is_valid_table_name("_x1"));
        assert!(!is_valid_table_name("1x"));
        assert!(!is_valid_table_name("x; DROP TABLE y"));
        assert!(!is_valid_table_name(""));
    }

    #[test]
    fn old_tracking_table_is_migrated_to_one_row_per_application() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE tracking (application_name TEXT, notification_id INTEGER, \
             PRIMARY KEY (application_name, notification_id)) WITHOUT ROWID; \
             INSERT INTO tracking VALUES ('a', 1), ('a', 5), ('b', 2);",
        )
        .unwrap();
        create_tracking_table(&conn).unwrap();
        assert_eq!(max_tracking_id(&conn, "a").unwrap(), Some(5));
        assert_eq!(max_tracking_id(&conn, "b").unwrap(), Some(2));
        assert_eq!(migration_mark(&conn).unwrap(), Some(1));
        // Creating again changes nothing.
        create_tracking_table(&conn).unwrap();
        assert_eq!(max_tracking_id(&conn, "a").unwrap(), Some(5));
    }
}
