//! Money as integer minor units plus an ISO 4217 currency code; never floats.
//! Knows how many minor digits each currency has (JPY has none, KWD has three) and shows
//! amounts the way the Unicode CLDR says English writes them (`€1,234.50`, `¥3,500`,
//! `CHF 9.00`), through ICU4X's currency formatter and its compiled CLDR data: no
//! hand-written symbols or grouping (test `formats_by_cldr_rules`).

use std::cell::RefCell;
use std::collections::HashMap;

use fixed_decimal::Decimal;
use icu_decimal::DecimalFormatter;
use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_locale_core::preferences::extensions::unicode::keywords::CurrencyType;
use icu_locale_core::Locale;
use serde::Serialize;
use writeable::Writeable;

/// The locale the site writes in. Its pages are English; amounts follow English (CLDR `en`)
/// conventions whatever the currency.
const LOCALE: &str = "en";

/// Number of digits after the decimal point for `currency` (ISO 4217).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" | "HUF" | "TWD" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// The ISO 4217 currencies PayPal accepts for payments, with their English names: the
/// choices of an event's currency (issue 16; the database checks the same list).
pub const PAYPAL_CURRENCIES: [(&str, &str); 24] = [
    ("AUD", "Australian dollar"),
    ("BRL", "Brazilian real"),
    ("CAD", "Canadian dollar"),
    ("CNY", "Chinese renminbi"),
    ("CZK", "Czech koruna"),
    ("DKK", "Danish krone"),
    ("EUR", "Euro"),
    ("HKD", "Hong Kong dollar"),
    ("HUF", "Hungarian forint"),
    ("ILS", "Israeli new shekel"),
    ("JPY", "Japanese yen"),
    ("MYR", "Malaysian ringgit"),
    ("MXN", "Mexican peso"),
    ("TWD", "New Taiwan dollar"),
    ("NZD", "New Zealand dollar"),
    ("NOK", "Norwegian krone"),
    ("PHP", "Philippine peso"),
    ("PLN", "Polish złoty"),
    ("GBP", "Pound sterling"),
    ("SGD", "Singapore dollar"),
    ("SEK", "Swedish krona"),
    ("CHF", "Swiss franc"),
    ("THB", "Thai baht"),
    ("USD", "United States dollar"),
];

/// True when PayPal accepts `code` (one of [`PAYPAL_CURRENCIES`]).
pub fn is_paypal_currency(code: &str) -> bool {
    PAYPAL_CURRENCIES.iter().any(|(c, _)| *c == code)
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

    /// A price as shown to buyers: `€12.50`, `$5.00`, `¥1,200`, `KWD 12.500`; `Free` for zero.
    pub fn display(&self) -> String {
        if self.minor == 0 {
            return "Free".into();
        }
        self.amount()
    }

    /// An amount with its currency, zero included (`€0.00`): sums such as revenue.
    pub fn amount(&self) -> String {
        let mut value = Decimal::from(self.minor);
        value
            .absolute
            .multiply_pow10(-(minor_digits(&self.currency) as i16));
        FORMATTERS.with(|cache| {
            let mut cache = cache.borrow_mut();
            // Looked up by &str first: a listing formats many prices of few currencies.
            if !cache.contains_key(self.currency.as_str()) {
                cache.insert(self.currency.clone(), formatter_for(&self.currency));
            }
            let formatter = &cache[self.currency.as_str()];
            match formatter {
                Some(f) => f
                    .format_fixed_decimal(&value)
                    .write_to_string()
                    .into_owned(),
                // Not a currency CLDR knows (checked at save; kept for old rows): the code.
                None => format!("{} {}", self.currency, self.decimal_string()),
            }
        })
    }
}

thread_local! {
    /// One formatter per currency per thread: building one reads the compiled data.
    static FORMATTERS: RefCell<HashMap<String, Option<CurrencyFormatter<DecimalFormatter>>>> = RefCell::new(HashMap::new());
}

fn formatter_for(currency: &str) -> Option<CurrencyFormatter<DecimalFormatter>> {
    let locale: Locale = LOCALE.parse().ok()?;
    let code = CurrencyType::try_from_str(&currency.to_ascii_lowercase()).ok()?;
    CurrencyFormatter::try_new_symbol((&locale).into(), code, Default::default()).ok()
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
        assert_eq!(Money::new(1200, "JPY").display(), "¥1,200");
        assert_eq!(Money::new(0, "EUR").display(), "Free");
    }

    #[test]
    fn formats_by_cldr_rules() {
        assert_eq!(Money::new(350_000, "JPY").amount(), "¥350,000");
        assert_eq!(Money::new(3500, "JPY").amount(), "¥3,500");
        assert_eq!(Money::new(123_456_789, "EUR").amount(), "€1,234,567.89");
        assert_eq!(Money::new(-150, "GBP").amount(), "-£1.50");
        assert_eq!(Money::new(500, "USD").amount(), "$5.00");
        assert_eq!(Money::new(900, "CHF").amount(), "CHF\u{a0}9.00");
        assert_eq!(Money::new(12500, "KWD").amount(), "KWD\u{a0}12.500");
        assert_eq!(Money::new(1999, "CAD").amount(), "CA$19.99");
    }

    #[test]
    fn currency_codes() {
        assert!(is_currency_code("EUR"));
        assert!(!is_currency_code("eur"));
        assert!(!is_currency_code("EURO"));
    }
}
