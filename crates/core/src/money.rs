//! Money as integer minor units plus an ISO 4217 currency code; never floats.
//! Knows how many minor digits each currency has (JPY has none, KWD has three).

use serde::Serialize;

/// Number of digits after the decimal point for `currency` (ISO 4217).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" | "HUF" | "TWD" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// True for a plausible ISO 4217 code: three upper-case ASCII letters.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// An amount of one currency in its minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub minor: i64,
    pub currency: String,
}

impl Money {
    pub fn new(minor: i64, currency: &str) -> Money {
        Money {
            minor,
            currency: currency.to_string(),
        }
    }

    /// The plain decimal amount, as PayPal's `value` field wants it: `12.50`, `1200`, `1.250`.
    pub fn decimal_string(&self) -> String {
        let digits = minor_digits(&self.currency);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if digits == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(digits);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }

    /// A price as shown to buyers: `€12.50`, `$5.00`, `¥1200`, `12.500 KWD`; `Free` for zero.
    pub fn display(&self) -> String {
        if self.minor == 0 {
            return "Free".into();
        }
        self.amount()
    }

    /// An amount with its currency, zero included (`€0.00`): sums such as revenue.
    pub fn amount(&self) -> String {
        let amount = self.decimal_string();
        match self.currency.as_str() {
            "EUR" => format!("€{amount}"),
            "USD" => format!("${amount}"),
            "GBP" => format!("£{amount}"),
            "JPY" => format!("¥{amount}"),
            other => format!("{amount} {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_free_as_a_price_but_an_amount_as_a_sum() {
        assert_eq!(Money::new(0, "EUR").display(), "Free");
        assert_eq!(Money::new(0, "EUR").amount(), "€0.00");
        assert_eq!(Money::new(0, "JPY").amount(), "¥0");
    }

    #[test]
    fn formats_minor_units_per_currency() {
        assert_eq!(Money::new(1250, "EUR").decimal_string(), "12.50");
        assert_eq!(Money::new(5, "USD").decimal_string(), "0.05");
        assert_eq!(Money::new(1200, "JPY").decimal_string(), "1200");
        assert_eq!(Money::new(12500, "KWD").decimal_string(), "12.500");
        assert_eq!(Money::new(-150, "GBP").decimal_string(), "-1.50");
        assert_eq!(Money::new(1250, "EUR").display(), "€12.50");
        assert_eq!(Money::new(1200, "JPY").display(), "¥1200");
        assert_eq!(Money::new(900, "CHF").display(), "9.00 CHF");
        assert_eq!(Money::new(0, "EUR").display(), "Free");
    }

    #[test]
    fn currency_codes() {
        assert!(is_currency_code("EUR"));
        assert!(!is_currency_code("eur"));
        assert!(!is_currency_code("EURO"));
    }
}
