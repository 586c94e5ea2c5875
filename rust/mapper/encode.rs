//! Domain events to stored events: each event's `__dict__` encoded to JSON
//! state (GIL held), then the batch sealed (compressed and encrypted).

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::classes::Memo;
use super::diagnose::associated_data;
use super::{for_each, to_bytes, Mapper};
use crate::codec::encode::Encoder;
use crate::errors::{error, ErrorKind};
use crate::records::StoredEvent;

/// What a stored event needs besides its state.
type Head<'py> = (Bound<'py, PyAny>, i64, Bound<'py, PyString>);

impl Mapper {
    /// Appends an event's encoded state to `enc.buf`; returns its id,
    /// version and topic.
    fn encode_event<'py>(
        &self,
        enc: &mut Encoder<'py>,
        memo: &mut Memo<'py>,
        event: &Bound<'py, PyAny>,
    ) -> PyResult<Head<'py>> {
        let py = event.py();
        let (topic, class_version) = self.classes.encoding(&event.get_type(), memo)?;
        let fail = |problem: String| {
            error(
                py,
                ErrorKind::Persistence,
                format!("cannot encode {topic} event: {problem}"),
            )
        };
        // SAFETY: `event` is alive; PyObject_GenericGetDict returns a new reference.
        let state = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyObject_GenericGetDict(event.as_ptr(), std::ptr::null_mut()),
            )
        }
        .and_then(|d| Ok(d.cast_into::<PyDict>()?))
        .map_err(|e| fail(format!("cannot read its __dict__ ({e})")))?;
        let (id_key, version_key) = (
            intern!(py, "originator_id"),
            intern!(py, "originator_version"),
        );
        let originator_id = state
            .get_item(id_key)?
            .ok_or_else(|| fail("it has no originator_id".into()))?;
        let originator_version: i64 = state
            .get_item(version_key)?
            .ok_or_else(|| fail("it has no originator_version".into()))?
            .extract()
            .map_err(|e| fail(format!("originator_version must be an int ({e})")))?;
        if self.native {
            let skip = [
                (id_key, "originator_id"),
                (version_key, "originator_version"),
            ];
            enc.encode_state(&state, skip, class_version).map_err(|e| {
                let context = format!(
                    " (topic '{topic}', originator_id '{originator_id}', \
                     originator_version {originator_version})"
                );
                e.into_pyerr(py, "event attribute", &context)
            })?;
        } else {
            let state = state.copy()?;
            state.del_item(id_key)?;
            state.del_item(version_key)?;
            if class_version > 1 {
                state.set_item(intern!(py, "class_version"), class_version)?;
            }
            let encoded = to_bytes(
                self.transcoder
                    .bind(py)
                    .call_method1(intern!(py, "encode"), (state,))?,
            )?;
            enc.buf.extend_from_slice(encoded.as_bytes());
        }
        Ok((originator_id, originator_version, topic))
    }

    /// Domain events to stored events: every state encoded (GIL held),
    /// then the batch compressed and encrypted (GIL released if large).
    pub(super) fn stored_events<'py>(
        &self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Py<StoredEvent>>> {
        let mut enc = Encoder::new(self.transcoder.bind(py))?;
        let mut memo = Memo::default();
        let capacity = events.len().unwrap_or(0);
        let mut heads = Vec::with_capacity(capacity);
        let mut ends = Vec::with_capacity(capacity);
        for_each(events, |event| {
            heads.push(self.encode_event(&mut enc, &mut memo, event)?);
            ends.push(enc.buf.len());
            Ok(())
        })?;
        let mut start = 0;
        let states: Vec<&[u8]> = ends
            .iter()
            .map(|&end| {
                let state = &enc.buf[start..end];
                start = end;
                state
            })
            .collect();
        let aads = if self.sealing.binds() {
            heads
                .iter()
                .map(|(id, version, topic)| associated_data(id, *version, topic))
                .collect::<PyResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let sealed = self.sealing.seal(py, states, &aads)?;
        heads
            .into_iter()
            .zip(sealed)
            .map(|((originator_id, version, topic), state)| {
                StoredEvent::create(
                    py,
                    originator_id.unbind(),
                    version,
                    topic.unbind(),
                    state.unbind(),
                )
            })
            .collect()
    }
}
