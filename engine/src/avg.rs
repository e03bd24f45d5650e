//! `avg` whose decimal results are rounded half away from zero.
//!
//! DataFusion 55's decimal `avg` divides the sum by the count with an
//! integer division, so the last digit of the result is truncated toward
//! zero (`DecimalAverager::avg` in datafusion-functions-aggregate-common):
//! 0.01, 0.02, 0.02 as decimal(15, 2) average to 0.016666, not 0.016667.
//!
//! [`RoundedAvg`] replaces it under the same name (`avg`, alias `mean`),
//! with the built-in's signature, return type and state, so plans, column
//! names and partial/final aggregation are unchanged. For decimal input it
//! asks the built-in for one more digit of scale (and precision) than the
//! declared return type, then rounds that digit away half away from zero.
//! That is exact: the built-in truncates toward zero, and
//! `trunc(10q)` carries enough of `q` to round it (for `q >= 0`,
//! `floor(q + 1/2) = floor((floor(10q) + 5) / 10)`; negatives mirror).
//! Everything else (update, merge, state, retraction for sliding windows,
//! DISTINCT, memory accounting) is the built-in's own code.
//!
//! The wider result is used only where the built-in computes it as safely
//! as the declared one: the type has a digit of precision and scale to
//! spare, the input scale is not negative, and the built-in's sum type
//! keeps its row budget after the extra factor of ten (see
//! [`RoundedAvg::wider_return`]). Elsewhere (decimal(34, _) and wider, for
//! example) the built-in runs unchanged and still truncates.
//!
//! SQL resolves `avg` through the run's function registry, where
//! `session` registers [`avg_udaf`]; DataFrame code must build its
//! expressions with [`avg`], not DataFusion's `expr_fn::avg`, which carries
//! the built-in UDAF itself.

use std::sync::{Arc, LazyLock};

use datafusion::{
    arrow::{
        array::{Array, ArrayRef, ArrowNativeTypeOp, AsArray, BooleanArray, PrimitiveArray},
        datatypes::{
            ArrowNativeType, DECIMAL32_MAX_PRECISION, DECIMAL32_MAX_SCALE, DECIMAL64_MAX_PRECISION,
            DECIMAL64_MAX_SCALE, DECIMAL128_MAX_PRECISION, DECIMAL128_MAX_SCALE,
            DECIMAL256_MAX_PRECISION, DECIMAL256_MAX_SCALE, DataType, Decimal32Type, Decimal64Type,
            Decimal128Type, Decimal256Type, DecimalType, FieldRef,
        },
        error::ArrowError,
    },
    common::{Result, ScalarValue, internal_datafusion_err, internal_err},
    functions_aggregate::average::Avg,
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, Expr,
        GroupsAccumulator, ReversedUDAF, Signature,
        function::{AccumulatorArgs, StateFieldsArgs},
    },
};

/// Digits the built-in `avg` reserves in its sum type above the input's
/// precision (`AVG_SUM_HEADROOM_DIGITS` in datafusion-functions-aggregate:
/// 4 for the scale-up before the division, 9 for a billion rows), plus the
/// one more digit of scale asked for here. A sum type with fewer digits to
/// spare would overflow sooner with the wider result than the built-in does
/// with its own, so such input keeps the built-in.
const SUM_HEADROOM_DIGITS: u8 = 13 + 1;

/// The shared [`RoundedAvg`] UDAF.
pub(crate) fn avg_udaf() -> Arc<AggregateUDF> {
    static UDAF: LazyLock<Arc<AggregateUDF>> =
        LazyLock::new(|| Arc::new(AggregateUDF::from(RoundedAvg::default())));
    Arc::clone(&UDAF)
}

/// `avg(expr)` with [`RoundedAvg`], for DataFrame code (in place of
/// `datafusion::functions_aggregate::expr_fn::avg`).
pub(crate) fn avg(expr: Expr) -> Expr {
    avg_udaf().call(vec![expr])
}

/// DataFusion's `avg` with decimal results rounded instead of truncated;
/// see the module documentation.
///
/// Only the methods the built-in overrides are implemented, each by
/// delegation (the accumulators wrapped): the trait's defaults for the
/// others derive from these, so they behave as the built-in's do.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct RoundedAvg {
    /// The built-in, which does all the work.
    inner: Avg,
}

impl RoundedAvg {
    /// The return field with one more digit of precision and scale than
    /// `args` declares, when the built-in can compute that as safely as the
    /// declared type; None for input that is not decimal and where the
    /// built-in is to run unchanged.
    fn wider_return(&self, args: &AccumulatorArgs<'_>) -> Result<Option<FieldRef>> {
        let Some(input) = args.expr_fields.first() else {
            return Ok(None);
        };
        let Some((input_precision, input_scale)) = decimal_parts(input.data_type()) else {
            return Ok(None);
        };
        // A negative scale is a corner the built-in's scaling does not
        // handle either; leave it alone.
        if input_scale < 0 {
            return Ok(None);
        }
        let Some(wider) = one_more_digit(args.return_field.data_type()) else {
            return Ok(None);
        };
        // The sum type is private to the built-in; its state names it.
        let state = self.inner.state_fields(StateFieldsArgs {
            name: args.name,
            input_fields: args.expr_fields,
            return_field: Arc::clone(&args.return_field),
            ordering_fields: &[],
            is_distinct: false,
        })?;
        let sum_precision = state
            .get(1)
            .and_then(|field| decimal_parts(field.data_type()))
            .map(|(precision, _)| precision);
        match sum_precision {
            Some(precision) if precision >= input_precision.saturating_add(SUM_HEADROOM_DIGITS) => {
                Ok(Some(Arc::new(
                    args.return_field.as_ref().clone().with_data_type(wider),
                )))
            }
            _ => Ok(None),
        }
    }
}

impl AggregateUDFImpl for RoundedAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(wider) = self.wider_return(&args)? else {
            return self.inner.accumulator(args);
        };
        let declared = args.return_field.data_type().clone();
        let inner = self.inner.accumulator(AccumulatorArgs {
            return_field: wider,
            ..args
        })?;
        Ok(Box::new(RoundedAccumulator { inner, declared }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // The built-in's sliding accumulator is its plain one (it supports
        // retraction); going through the inner one here would skip the
        // rounding.
        self.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let Some(wider) = self.wider_return(&args)? else {
            return self.inner.create_groups_accumulator(args);
        };
        let declared = args.return_field.data_type().clone();
        let inner = self.inner.create_groups_accumulator(AccumulatorArgs {
            return_field: wider,
            ..args
        })?;
        Ok(Box::new(RoundedGroupsAccumulator { inner, declared }))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// The built-in's accumulator (plain, sliding or DISTINCT) computing one
/// more digit than `declared`, which [`Accumulator::evaluate`] rounds away.
#[derive(Debug)]
struct RoundedAccumulator {
    /// The built-in accumulator, built for the wider return type.
    inner: Box<dyn Accumulator>,
    /// The return type the plan declares.
    declared: DataType,
}

impl Accumulator for RoundedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        round_scalar(self.inner.evaluate()?, &self.declared)
    }

    fn size(&self) -> usize {
        self.inner.size() + size_of::<Self>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // The state is the sum and count (or the distinct values), which do
        // not depend on the return type: the built-in's exactly.
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// The built-in's groups accumulator computing one more digit than
/// `declared`, which [`GroupsAccumulator::evaluate`] rounds away.
struct RoundedGroupsAccumulator {
    /// The built-in groups accumulator, built for the wider return type.
    inner: Box<dyn GroupsAccumulator>,
    /// The return type the plan declares.
    declared: DataType,
}

impl GroupsAccumulator for RoundedGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .update_batch(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        round_array(&self.inner.evaluate(emit_to)?, &self.declared)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.inner.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size() + size_of::<Self>()
    }
}

/// Precision and scale of a decimal type.
fn decimal_parts(data_type: &DataType) -> Option<(u8, i8)> {
    match data_type {
        DataType::Decimal32(precision, scale)
        | DataType::Decimal64(precision, scale)
        | DataType::Decimal128(precision, scale)
        | DataType::Decimal256(precision, scale) => Some((*precision, *scale)),
        _ => None,
    }
}

/// The same decimal type with one more digit of precision and scale, if
/// its width has room for it.
fn one_more_digit(data_type: &DataType) -> Option<DataType> {
    match *data_type {
        DataType::Decimal32(p, s) if p < DECIMAL32_MAX_PRECISION && s < DECIMAL32_MAX_SCALE => {
            Some(DataType::Decimal32(p + 1, s + 1))
        }
        DataType::Decimal64(p, s) if p < DECIMAL64_MAX_PRECISION && s < DECIMAL64_MAX_SCALE => {
            Some(DataType::Decimal64(p + 1, s + 1))
        }
        DataType::Decimal128(p, s) if p < DECIMAL128_MAX_PRECISION && s < DECIMAL128_MAX_SCALE => {
            Some(DataType::Decimal128(p + 1, s + 1))
        }
        DataType::Decimal256(p, s) if p < DECIMAL256_MAX_PRECISION && s < DECIMAL256_MAX_SCALE => {
            Some(DataType::Decimal256(p + 1, s + 1))
        }
        _ => None,
    }
}

/// A wider average (one more digit of scale) rounded to `declared`.
fn round_scalar(value: ScalarValue, declared: &DataType) -> Result<ScalarValue> {
    Ok(match (value, declared) {
        (ScalarValue::Decimal32(v, ..), DataType::Decimal32(p, s)) => ScalarValue::Decimal32(
            v.map(|v| drop_digit::<Decimal32Type>(v, *p, *s))
                .transpose()?,
            *p,
            *s,
        ),
        (ScalarValue::Decimal64(v, ..), DataType::Decimal64(p, s)) => ScalarValue::Decimal64(
            v.map(|v| drop_digit::<Decimal64Type>(v, *p, *s))
                .transpose()?,
            *p,
            *s,
        ),
        (ScalarValue::Decimal128(v, ..), DataType::Decimal128(p, s)) => ScalarValue::Decimal128(
            v.map(|v| drop_digit::<Decimal128Type>(v, *p, *s))
                .transpose()?,
            *p,
            *s,
        ),
        (ScalarValue::Decimal256(v, ..), DataType::Decimal256(p, s)) => ScalarValue::Decimal256(
            v.map(|v| drop_digit::<Decimal256Type>(v, *p, *s))
                .transpose()?,
            *p,
            *s,
        ),
        (value, _) => return internal_err!("avg: a {value:?} where a {declared} was expected"),
    })
}

/// Wider averages (one more digit of scale) rounded to `declared`.
fn round_array(values: &ArrayRef, declared: &DataType) -> Result<ArrayRef> {
    match declared {
        DataType::Decimal32(p, s) => round_decimals::<Decimal32Type>(values, *p, *s),
        DataType::Decimal64(p, s) => round_decimals::<Decimal64Type>(values, *p, *s),
        DataType::Decimal128(p, s) => round_decimals::<Decimal128Type>(values, *p, *s),
        DataType::Decimal256(p, s) => round_decimals::<Decimal256Type>(values, *p, *s),
        _ => internal_err!("avg: rounding to {declared}"),
    }
}

/// [`round_array`] for one decimal width.
fn round_decimals<T: DecimalType>(values: &ArrayRef, precision: u8, scale: i8) -> Result<ArrayRef> {
    let values = values.as_primitive_opt::<T>().ok_or_else(|| {
        internal_datafusion_err!(
            "avg: a {} where a {} was expected",
            values.data_type(),
            T::DATA_TYPE
        )
    })?;
    // Null slots are skipped, and keep their nulls.
    let rounded: PrimitiveArray<T> = values.try_unary(|v| drop_digit::<T>(v, precision, scale))?;
    Ok(Arc::new(
        rounded.with_precision_and_scale(precision, scale)?,
    ))
}

/// Drops the last decimal digit of `value`, rounding half away from zero,
/// and checks the result fits `precision` (it always does for an average,
/// which is never larger than the largest input; checked all the same,
/// since a wrong value must not pass silently).
fn drop_digit<T: DecimalType>(
    value: T::Native,
    precision: u8,
    scale: i8,
) -> Result<T::Native, ArrowError> {
    let ten = T::Native::usize_as(10);
    let five = T::Native::usize_as(5);
    let quotient = value.div_wrapping(ten);
    // Truncated division: the remainder has the sign of `value`, and no
    // step below can overflow (|quotient| is a tenth of the type's range).
    let remainder = value.mod_wrapping(ten);
    let rounded = if remainder.is_ge(five) {
        quotient.add_wrapping(T::Native::ONE)
    } else if remainder.is_le(five.neg_wrapping()) {
        quotient.sub_wrapping(T::Native::ONE)
    } else {
        quotient
    };
    T::validate_decimal_precision(rounded, precision, scale)?;
    Ok(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::i256;

    #[test]
    fn the_last_digit_rounds_half_away_from_zero() {
        for (value, expected) in [
            (166_666, 16_667),
            (166_664, 16_666),
            (166_665, 16_667),
            (-166_666, -16_667),
            (-166_665, -16_667),
            (-166_664, -16_666),
            (4, 0),
            (5, 1),
            (-5, -1),
            (-4, 0),
            (0, 0),
        ] {
            assert_eq!(
                drop_digit::<Decimal128Type>(value, 19, 6).ok(),
                Some(expected),
                "{value}"
            );
            assert_eq!(
                drop_digit::<Decimal256Type>(i256::from_i128(value), 19, 6).ok(),
                Some(i256::from_i128(expected)),
                "{value}"
            );
            assert_eq!(
                drop_digit::<Decimal32Type>(value as i32, 9, 6).ok(),
                Some(expected as i32),
                "{value}"
            );
        }
    }

    #[test]
    fn a_result_outside_the_precision_is_an_error_not_a_wrong_value() {
        assert!(drop_digit::<Decimal128Type>(99_995, 4, 2).is_err());
        assert_eq!(drop_digit::<Decimal128Type>(99_994, 4, 2).ok(), Some(9_999));
    }

    #[test]
    fn only_types_with_a_digit_to_spare_are_widened() {
        assert_eq!(
            one_more_digit(&DataType::Decimal128(19, 6)),
            Some(DataType::Decimal128(20, 7))
        );
        assert_eq!(one_more_digit(&DataType::Decimal128(38, 6)), None);
        assert_eq!(one_more_digit(&DataType::Decimal128(30, 38)), None);
        assert_eq!(one_more_digit(&DataType::Decimal32(9, 4)), None);
        assert_eq!(one_more_digit(&DataType::Float64), None);
    }

    #[test]
    fn a_grouped_result_keeps_its_nulls_and_gets_the_declared_type() {
        let wide: ArrayRef = Arc::new(
            datafusion::arrow::array::Decimal128Array::from(vec![Some(166_666), None, Some(-5)])
                .with_precision_and_scale(20, 7)
                .unwrap(),
        );
        let rounded = round_array(&wide, &DataType::Decimal128(19, 6)).unwrap();
        assert_eq!(rounded.data_type(), &DataType::Decimal128(19, 6));
        let rounded = rounded.as_primitive::<Decimal128Type>();
        assert_eq!(
            rounded.iter().collect::<Vec<_>>(),
            vec![Some(16_667), None, Some(-1)]
        );
    }
}
