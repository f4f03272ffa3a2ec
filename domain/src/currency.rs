//! ISO 4217 currencies.
//!
//! The table holds every active alphabetic code of ISO 4217 list one (as
//! published 2026-01-01) that has a minor unit, with its exponent. Codes whose
//! minor unit is "N.A." (precious metals XAU/XAG/XPD/XPT, bond market units
//! XBA–XBD, XDR, XSU, XUA, the testing code XTS and XXX) are left out: an amount
//! in minor units means nothing for them. Withdrawn codes (e.g. HRK, BGN, ANG,
//! SLL, ZWL) are not accepted.
//!
//! Parsing is case-sensitive: only the upper-case code is a currency (`"INR"`
//! parses, `"inr"` does not). This keeps one spelling in the stored events and
//! the API; a service that wants to be lenient can upper-case first.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;
use crate::money::MAX_AMOUNT_MINOR;

/// An active ISO 4217 currency. Only constructible from the table, so its
/// exponent is always known. Serialized as its code string (`"INR"`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency {
    code: &'static str,
    minor_unit_exponent: u8,
    name: &'static str,
}

macro_rules! currencies {
    ($($code:ident $exponent:literal $name:literal;)+) => {
        impl Currency {
            $(
                #[doc = $name]
                pub const $code: Currency = Currency {
                    code: stringify!($code),
                    minor_unit_exponent: $exponent,
                    name: $name,
                };
            )+

            /// Every accepted currency, sorted by code.
            const TABLE: &'static [Currency] = &[$(Currency::$code),+];
        }
    };
}

currencies! {
    AED 2 "UAE Dirham";
    AFN 2 "Afghani";
    ALL 2 "Lek";
    AMD 2 "Armenian Dram";
    AOA 2 "Kwanza";
    ARS 2 "Argentine Peso";
    AUD 2 "Australian Dollar";
    AWG 2 "Aruban Florin";
    AZN 2 "Azerbaijan Manat";
    BAM 2 "Convertible Mark";
    BBD 2 "Barbados Dollar";
    BDT 2 "Taka";
    BHD 3 "Bahraini Dinar";
    BIF 0 "Burundi Franc";
    BMD 2 "Bermudian Dollar";
    BND 2 "Brunei Dollar";
    BOB 2 "Boliviano";
    BOV 2 "Mvdol";
    BRL 2 "Brazilian Real";
    BSD 2 "Bahamian Dollar";
    BTN 2 "Ngultrum";
    BWP 2 "Pula";
    BYN 2 "Belarusian Ruble";
    BZD 2 "Belize Dollar";
    CAD 2 "Canadian Dollar";
    CDF 2 "Congolese Franc";
    CHE 2 "WIR Euro";
    CHF 2 "Swiss Franc";
    CHW 2 "WIR Franc";
    CLF 4 "Unidad de Fomento";
    CLP 0 "Chilean Peso";
    CNY 2 "Yuan Renminbi";
    COP 2 "Colombian Peso";
    COU 2 "Unidad de Valor Real";
    CRC 2 "Costa Rican Colon";
    CUP 2 "Cuban Peso";
    CVE 2 "Cabo Verde Escudo";
    CZK 2 "Czech Koruna";
    DJF 0 "Djibouti Franc";
    DKK 2 "Danish Krone";
    DOP 2 "Dominican Peso";
    DZD 2 "Algerian Dinar";
    EGP 2 "Egyptian Pound";
    ERN 2 "Nakfa";
    ETB 2 "Ethiopian Birr";
    EUR 2 "Euro";
    FJD 2 "Fiji Dollar";
    FKP 2 "Falkland Islands Pound";
    GBP 2 "Pound Sterling";
    GEL 2 "Lari";
    GHS 2 "Ghana Cedi";
    GIP 2 "Gibraltar Pound";
    GMD 2 "Dalasi";
    GNF 0 "Guinean Franc";
    GTQ 2 "Quetzal";
    GYD 2 "Guyana Dollar";
    HKD 2 "Hong Kong Dollar";
    HNL 2 "Lempira";
    HTG 2 "Gourde";
    HUF 2 "Forint";
    IDR 2 "Rupiah";
    ILS 2 "New Israeli Sheqel";
    INR 2 "Indian Rupee";
    IQD 3 "Iraqi Dinar";
    IRR 2 "Iranian Rial";
    ISK 0 "Iceland Krona";
    JMD 2 "Jamaican Dollar";
    JOD 3 "Jordanian Dinar";
    JPY 0 "Yen";
    KES 2 "Kenyan Shilling";
    KGS 2 "Som";
    KHR 2 "Riel";
    KMF 0 "Comorian Franc";
    KPW 2 "North Korean Won";
    KRW 0 "Won";
    KWD 3 "Kuwaiti Dinar";
    KYD 2 "Cayman Islands Dollar";
    KZT 2 "Tenge";
    LAK 2 "Lao Kip";
    LBP 2 "Lebanese Pound";
    LKR 2 "Sri Lanka Rupee";
    LRD 2 "Liberian Dollar";
    LSL 2 "Loti";
    LYD 3 "Libyan Dinar";
    MAD 2 "Moroccan Dirham";
    MDL 2 "Moldovan Leu";
    MGA 2 "Malagasy Ariary";
    MKD 2 "Denar";
    MMK 2 "Kyat";
    MNT 2 "Tugrik";
    MOP 2 "Pataca";
    MRU 2 "Ouguiya";
    MUR 2 "Mauritius Rupee";
    MVR 2 "Rufiyaa";
    MWK 2 "Malawi Kwacha";
    MXN 2 "Mexican Peso";
    MXV 2 "Mexican Unidad de Inversion (UDI)";
    MYR 2 "Malaysian Ringgit";
    MZN 2 "Mozambique Metical";
    NAD 2 "Namibia Dollar";
    NGN 2 "Naira";
    NIO 2 "Cordoba Oro";
    NOK 2 "Norwegian Krone";
    NPR 2 "Nepalese Rupee";
    NZD 2 "New Zealand Dollar";
    OMR 3 "Rial Omani";
    PAB 2 "Balboa";
    PEN 2 "Sol";
    PGK 2 "Kina";
    PHP 2 "Philippine Peso";
    PKR 2 "Pakistan Rupee";
    PLN 2 "Zloty";
    PYG 0 "Guarani";
    QAR 2 "Qatari Rial";
    RON 2 "Romanian Leu";
    RSD 2 "Serbian Dinar";
    RUB 2 "Russian Ruble";
    RWF 0 "Rwanda Franc";
    SAR 2 "Saudi Riyal";
    SBD 2 "Solomon Islands Dollar";
    SCR 2 "Seychelles Rupee";
    SDG 2 "Sudanese Pound";
    SEK 2 "Swedish Krona";
    SGD 2 "Singapore Dollar";
    SHP 2 "Saint Helena Pound";
    SLE 2 "Leone";
    SOS 2 "Somali Shilling";
    SRD 2 "Surinam Dollar";
    SSP 2 "South Sudanese Pound";
    STN 2 "Dobra";
    SVC 2 "El Salvador Colon";
    SYP 2 "Syrian Pound";
    SZL 2 "Lilangeni";
    THB 2 "Baht";
    TJS 2 "Somoni";
    TMT 2 "Turkmenistan New Manat";
    TND 3 "Tunisian Dinar";
    TOP 2 "Pa'anga";
    TRY 2 "Turkish Lira";
    TTD 2 "Trinidad and Tobago Dollar";
    TWD 2 "New Taiwan Dollar";
    TZS 2 "Tanzanian Shilling";
    UAH 2 "Hryvnia";
    UGX 0 "Uganda Shilling";
    USD 2 "US Dollar";
    USN 2 "US Dollar (Next day)";
    UYI 0 "Uruguay Peso en Unidades Indexadas (UI)";
    UYU 2 "Peso Uruguayo";
    UYW 4 "Unidad Previsional";
    UZS 2 "Uzbekistan Sum";
    VED 2 "Bolívar Soberano";
    VES 2 "Bolívar Soberano";
    VND 0 "Dong";
    VUV 0 "Vatu";
    WST 2 "Tala";
    XAD 2 "Arab Accounting Dinar";
    XAF 0 "CFA Franc BEAC";
    XCD 2 "East Caribbean Dollar";
    XCG 2 "Caribbean Guilder";
    XOF 0 "CFA Franc BCEAO";
    XPF 0 "CFP Franc";
    YER 2 "Yemeni Rial";
    ZAR 2 "Rand";
    ZMW 2 "Zambian Kwacha";
    ZWG 2 "Zimbabwe Gold";
}

impl Currency {
    /// Looks up an upper-case alphabetic code (case-sensitive, see the module docs).
    pub fn from_code(code: &str) -> Result<Self, DomainError> {
        Self::TABLE
            .binary_search_by(|currency| currency.code.cmp(code))
            .map(|index| Self::TABLE[index])
            .map_err(|_| DomainError::UnknownCurrency)
    }

    /// The three-letter code, e.g. `"INR"`.
    pub const fn code(&self) -> &'static str {
        self.code
    }

    /// Number of decimal places of the minor unit (INR 2, JPY 0, KWD 3, CLF 4).
    pub const fn minor_unit_exponent(&self) -> u8 {
        self.minor_unit_exponent
    }

    /// The largest amount a command may carry in this currency, in minor
    /// units: [`MAX_AMOUNT_MINOR`] (8 digits) for every currency today.
    pub const fn max_amount_minor(&self) -> i64 {
        MAX_AMOUNT_MINOR
    }

    /// The ISO 4217 name, e.g. `"Indian Rupee"`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Every accepted currency, sorted by code.
    pub fn all() -> &'static [Currency] {
        Self::TABLE
    }
}

/// The contract's default currency: INR.
impl Default for Currency {
    fn default() -> Self {
        Self::INR
    }
}

impl FromStr for Currency {
    type Err = DomainError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::from_code(code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;

        impl serde::de::Visitor<'_> for CodeVisitor {
            type Value = Currency;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an upper-case ISO 4217 currency code")
            }

            fn visit_str<E: serde::de::Error>(self, code: &str) -> Result<Currency, E> {
                Currency::from_code(code).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(CodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        let table = Currency::all();
        assert!(table.windows(2).all(|pair| pair[0].code < pair[1].code));
        for currency in table {
            assert_eq!(currency.code.len(), 3);
            assert!(currency.code.bytes().all(|byte| byte.is_ascii_uppercase()));
            assert!(currency.minor_unit_exponent <= 4);
            assert!(!currency.name.is_empty());
        }
        assert_eq!(table.len(), 165);
    }

    #[test]
    fn parses_known_codes_case_sensitively() {
        assert_eq!("INR".parse::<Currency>().unwrap(), Currency::INR);
        assert_eq!(Currency::from_code("USD").unwrap().minor_unit_exponent(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().minor_unit_exponent(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().minor_unit_exponent(), 3);
        assert_eq!(Currency::from_code("CLF").unwrap().minor_unit_exponent(), 4);
        assert_eq!(Currency::from_code("AED").unwrap().name(), "UAE Dirham");
        assert_eq!(Currency::from_code("ZWG").unwrap().code(), "ZWG");
        for bad in [
            "inr", "Inr", "", "IN", "INRR", " INR", "XXX", "XAU", "XTS", "HRK", "ZZZ",
        ] {
            assert_eq!(
                Currency::from_code(bad),
                Err(DomainError::UnknownCurrency),
                "{bad:?}"
            );
        }
        assert_eq!(DomainError::UnknownCurrency.field(), Some("currency"));
    }

    #[test]
    fn default_is_inr() {
        assert_eq!(Currency::default(), Currency::INR);
        assert_eq!(Currency::INR.to_string(), "INR");
    }

    #[test]
    fn serde_uses_the_code() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"GBP\"").unwrap(),
            Currency::GBP
        );
        assert!(serde_json::from_str::<Currency>("\"gbp\"").is_err());
        assert!(serde_json::from_str::<Currency>("7").is_err());
    }
}
