//! Intervals on disk. Arrow's `Interval(MonthDayNano)` has no Parquet type, so a cached
//! interval column is stored losslessly as a struct `{months: int32, days: int32,
//! microseconds: int64}` and turned back into an interval when read. The field keeps its
//! `pgcache.pg_type` metadata (`interval`, `interval[]`), which is what marks it for the way back.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, IntervalMonthDayNanoArray, ListArray,
    StructArray,
};
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef,
};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::error::{Error, Result};

fn struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("microseconds", DataType::Int64, false),
    ])
}

fn has_interval(t: &DataType) -> bool {
    match t {
        DataType::Interval(IntervalUnit::MonthDayNano) => true,
        DataType::List(f) => has_interval(f.data_type()),
        _ => false,
    }
}

fn disk_type(t: &DataType) -> DataType {
    match t {
        DataType::Interval(IntervalUnit::MonthDayNano) => DataType::Struct(struct_fields()),
        DataType::List(f) => DataType::List(Arc::new(
            f.as_ref().clone().with_data_type(disk_type(f.data_type())),
        )),
        other => other.clone(),
    }
}

fn is_disk_interval(t: &DataType) -> bool {
    matches!(t, DataType::Struct(f) if *f == struct_fields())
}

fn memory_type(t: &DataType) -> DataType {
    match t {
        t if is_disk_interval(t) => DataType::Interval(IntervalUnit::MonthDayNano),
        DataType::List(f) => DataType::List(Arc::new(
            f.as_ref()
                .clone()
                .with_data_type(memory_type(f.data_type())),
        )),
        other => other.clone(),
    }
}

/// The schema as written to Parquet.
pub(crate) fn disk_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| has_interval(f.data_type())) {
        return schema.clone();
    }
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| Arc::new(f.as_ref().clone().with_data_type(disk_type(f.data_type()))))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether a field read from disk is a stored interval (by its pgcache type metadata).
fn marked_interval(f: &Field) -> bool {
    f.metadata()
        .get(crate::pg::types::PG_TYPE_KEY)
        .is_some_and(|t| t.starts_with("interval"))
}

/// The schema pgcache returns for a schema read from disk.
pub(crate) fn memory_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| marked_interval(f)) {
        return schema.clone();
    }
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if marked_interval(f) {
                Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(memory_type(f.data_type())),
                )
            } else {
                f.clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn array_to_disk(a: &ArrayRef) -> ArrayRef {
    match a.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let iv = a.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>();
            let months: Int32Array = iv
                .values()
                .iter()
                .map(|v| v.months)
                .collect::<Vec<_>>()
                .into();
            let days: Int32Array = iv
                .values()
                .iter()
                .map(|v| v.days)
                .collect::<Vec<_>>()
                .into();
            let micros: Int64Array = iv
                .values()
                .iter()
                .map(|v| v.nanoseconds / 1000)
                .collect::<Vec<_>>()
                .into();
            Arc::new(StructArray::new(
                struct_fields(),
                vec![Arc::new(months), Arc::new(days), Arc::new(micros)],
                iv.nulls().cloned(),
            ))
        }
        DataType::List(f) if has_interval(f.data_type()) => {
            let list = a.as_list::<i32>();
            let values = array_to_disk(list.values());
            let field = Arc::new(
                f.as_ref()
                    .clone()
                    .with_data_type(values.data_type().clone()),
            );
            Arc::new(ListArray::new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            ))
        }
        _ => a.clone(),
    }
}

fn array_to_memory(a: &ArrayRef) -> ArrayRef {
    match a.data_type() {
        t if is_disk_interval(t) => {
            let s = a.as_struct();
            let months = s.column(0).as_primitive::<arrow::datatypes::Int32Type>();
            let days = s.column(1).as_primitive::<arrow::datatypes::Int32Type>();
            let micros = s.column(2).as_primitive::<arrow::datatypes::Int64Type>();
            let values: Vec<IntervalMonthDayNano> = (0..s.len())
                .map(|i| {
                    IntervalMonthDayNano::new(
                        months.value(i),
                        days.value(i),
                        micros.value(i).saturating_mul(1000),
                    )
                })
                .collect();
            Arc::new(IntervalMonthDayNanoArray::new(
                values.into(),
                s.nulls().cloned(),
            ))
        }
        DataType::List(f) if f.data_type() != &memory_type(f.data_type()) => {
            let list = a.as_list::<i32>();
            let values = array_to_memory(list.values());
            let field = Arc::new(
                f.as_ref()
                    .clone()
                    .with_data_type(values.data_type().clone()),
            );
            Arc::new(ListArray::new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            ))
        }
        _ => a.clone(),
    }
}

/// Converts a batch to its on-disk form (`disk` is [`disk_schema`] of its schema).
pub(crate) fn to_disk(batch: &RecordBatch, disk: &SchemaRef) -> Result<RecordBatch> {
    if Arc::ptr_eq(disk, batch.schema_ref()) {
        return Ok(batch.clone());
    }
    let columns = batch.columns().iter().map(array_to_disk).collect();
    RecordBatch::try_new_with_options(
        disk.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(Error::arrow("converting intervals for Parquet"))
}

/// Converts a batch read from disk back (`memory` is [`memory_schema`] of its schema).
pub(crate) fn to_memory(batch: RecordBatch, memory: &SchemaRef) -> Result<RecordBatch> {
    if Arc::ptr_eq(memory, batch.schema_ref()) || batch.schema_ref() == memory {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(memory.fields())
        .map(|(a, f)| {
            if marked_interval(f) {
                array_to_memory(a)
            } else {
                a.clone()
            }
        })
        .collect();
    RecordBatch::try_new_with_options(
        memory.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(Error::arrow("converting intervals read from Parquet"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn intervals_roundtrip_through_the_disk_form() {
        let meta = HashMap::from([(
            crate::pg::types::PG_TYPE_KEY.to_owned(),
            "interval".to_owned(),
        )]);
        let field = Field::new("i", DataType::Interval(IntervalUnit::MonthDayNano), true)
            .with_metadata(meta);
        let schema = Arc::new(Schema::new(vec![field]));
        let values = IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(1, -2, 3_000)),
            None,
            Some(IntervalMonthDayNano::new(-14, 0, -86_400_000_000_000)),
        ]);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        let disk = disk_schema(&schema);
        let stored = to_disk(&batch, &disk).unwrap();
        assert!(matches!(
            stored.schema().field(0).data_type(),
            DataType::Struct(_)
        ));
        let back = to_memory(stored.clone(), &memory_schema(stored.schema_ref())).unwrap();
        assert_eq!(back, batch);
    }
}
