//! Turning what people type into what the API takes, without the browser.

use paystream_domain::currency::Currency;

/// An amount typed in major units (`12.50`) as minor units of `currency`
/// (`1250` for INR), with integer arithmetic only: at most as many decimals
/// as the currency has, no sign, no exponent.
pub fn minor_units(text: &str, currency: &str) -> Result<i64, String> {
    let currency = Currency::from_code(currency).map_err(|error| error.to_string())?;
    let exponent = u32::from(currency.minor_unit_exponent());
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(format!("enter an amount like 12.50 (got {text:?})"));
    }
    if fraction.len() > exponent as usize {
        return Err(format!(
            "{} takes at most {exponent} decimals",
            currency.code()
        ));
    }
    let scale = 10_i64.pow(exponent);
    let whole: i64 = whole
        .parse()
        .map_err(|_| "the amount is too large".to_owned())?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<width$}", width = exponent as usize)
            .parse()
            .map_err(|_| "the amount is too large".to_owned())?
    };
    whole
        .checked_mul(scale)
        .and_then(|minor| minor.checked_add(fraction))
        .ok_or_else(|| "the amount is too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::minor_units;

    #[test]
    fn major_units_become_minor_units_exactly() {
        assert_eq!(minor_units("12.50", "INR"), Ok(1250));
        assert_eq!(minor_units("12.5", "INR"), Ok(1250));
        assert_eq!(minor_units(" 500 ", "INR"), Ok(50_000));
        assert_eq!(minor_units("0.01", "INR"), Ok(1));
        assert_eq!(minor_units("500", "JPY"), Ok(500));
        for bad in ["", "-1", "1e3", "12.", ".5", "1.234", "abc", "1,5"] {
            assert!(minor_units(bad, "INR").is_err(), "{bad:?}");
        }
        assert!(minor_units("1.5", "JPY").is_err());
        assert!(minor_units("99999999999999999999", "INR").is_err());
        assert!(minor_units("1", "XXX").is_err());
    }
}
