/*
 * dqhash canonical row hash, strategy v2, in one file with no dependency beyond the JDK (11 or later).
 *
 * This is the second implementation of docs/hashing.md, kept byte-for-byte equal to the Python reference
 * (dqhash/core/canonical.py, dqhash/core/hashing.py) by the test suite: every golden vector in
 * tests/vectors/v2.jsonl and thousands of generated rows, accepted and refused alike.
 *
 * Use it from a Kafka Connect SMT or an on-prem Java service:
 *
 *     DqHash hasher = new DqHash(null, Map.of("updated_at", "timestamp", "amount", "decimal"));
 *     String hash = hasher.hash(row);                  // "v2:<64 hex>"
 *     Map<String, String> columns = hasher.columnDigests(row);
 *
 * Row values may be what Kafka Connect's JsonConverter produces (String, Boolean, Long, Integer, Short, Byte,
 * BigInteger, Double, Float, BigDecimal, byte[], List, Map, java.util.Date) or what DqHash.parseJson returns
 * (exact: integers as BigInteger, other numbers as JsonNumber keeping their text).
 *
 * As a command it reads JSON Lines on stdin like `dqhash hash` and prints the same lines:
 *
 *     javac -d out DqHash.java && java -cp out dqhash.DqHash --types ts=timestamp [--fields a,b] [--columns]
 */
package dqhash;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class DqHash {

    /** A value, row or configuration that cannot be hashed; the message says why. */
    public static final class HashException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        public HashException(String message) {
            super(message);
        }
    }

    /** A JSON number with a fraction or an exponent, kept as written (docs/hashing.md, section 1). */
    public static final class JsonNumber {
        public final String text;

        public JsonNumber(String text) {
            this.text = text;
        }

        @Override
        public String toString() {
            return text;
        }
    }

    /** A declared CQL type: a name and its parameters. */
    public static final class Type {
        public final String name;
        public final List<Type> params;

        Type(String name, List<Type> params) {
            this.name = name;
            this.params = params;
        }

        @Override
        public String toString() {
            if (params.isEmpty()) return name;
            StringBuilder out = new StringBuilder(name).append('<');
            for (int i = 0; i < params.size(); i++) out.append(i == 0 ? "" : ",").append(params.get(i));
            return out.append('>').toString();
        }
    }

    public static final int MAX_NUMBER_CHARS = 1000;
    public static final int MAX_DEPTH = 512;
    /** CPython refuses integer literals longer than this; refusing them here keeps both sides equal. */
    public static final int MAX_JSON_INTEGER_DIGITS = 4300;
    static final int COLUMN_DIGEST_HEX = 16;
    private static final byte[] HEADER = "dqhash:v2\n".getBytes(StandardCharsets.UTF_8);

    private final List<String> fields;
    private final Map<String, Type> types = new LinkedHashMap<>();

    /** @param fields the columns to hash (null: every column of the row); @param types column → CQL type. */
    public DqHash(List<String> fields, Map<String, String> types) {
        if (fields != null) {
            if (fields.isEmpty() || fields.stream().anyMatch(String::isEmpty)) {
                throw new HashException("the field list is empty or has an empty name");
            }
            if (fields.stream().distinct().count() != fields.size()) {
                throw new HashException("the field list names a column twice: " + fields);
            }
            List<String> sorted = new ArrayList<>(fields);
            sorted.sort(DqHash::compareNames);
            this.fields = sorted;
        } else {
            this.fields = null;
        }
        if (types != null) types.forEach((name, text) -> this.types.put(name, parseType(text)));
    }

    // ---------------------------------------------------------------- the row

    public String hash(Map<String, ?> row) {
        return "v2:" + hex(sha256(preimage(row)));
    }

    /** The exact bytes that are hashed. */
    public byte[] preimage(Map<String, ?> row) {
        List<String> names = columnNames(row);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(HEADER);
        out.writeBytes(ascii(names.size() + ":"));
        for (String name : names) {
            out.writeBytes(encode(Canon.text(checkedText(name))));
            out.writeBytes(encode(canon(row.get(name), types.get(name))));
        }
        return out.toByteArray();
    }

    /** The first 16 hex characters of SHA-256 over E(name) E(value), per hashed column. */
    public Map<String, String> columnDigests(Map<String, ?> row) {
        Map<String, String> digests = new LinkedHashMap<>();
        for (String name : columnNames(row)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(encode(Canon.text(checkedText(name))));
            out.writeBytes(encode(canon(row.get(name), types.get(name))));
            digests.put(name, hex(sha256(out.toByteArray())).substring(0, COLUMN_DIGEST_HEX));
        }
        return digests;
    }

    private List<String> columnNames(Map<String, ?> row) {
        if (fields != null) return fields;
        List<String> names = new ArrayList<>(row.keySet());
        for (String name : names) checkedText(name);
        names.sort(DqHash::compareNames);
        return names;
    }

    /** Columns sort by their UTF-8 bytes, unsigned. */
    static int compareNames(String left, String right) {
        return Arrays.compareUnsigned(left.getBytes(StandardCharsets.UTF_8), right.getBytes(StandardCharsets.UTF_8));
    }

    // ---------------------------------------------------------------- normalised values and their encoding

    /** A tag and a payload: text for scalars, elements for list/set, alternating keys and values for maps. */
    static final class Canon {
        final char tag;
        final String payload;
        final List<Canon> items;

        private Canon(char tag, String payload, List<Canon> items) {
            this.tag = tag;
            this.payload = payload;
            this.items = items;
        }

        static final Canon NULL = new Canon('n', "", null);

        static Canon scalar(char tag, String payload) {
            return new Canon(tag, payload, null);
        }

        static Canon text(String value) {
            return scalar('s', value);
        }

        static Canon collection(char tag, List<Canon> items) {
            return items.isEmpty() ? NULL : new Canon(tag, null, items);
        }
    }

    static byte[] encode(Canon c) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        encodeInto(c, out);
        return out.toByteArray();
    }

    private static void encodeInto(Canon c, ByteArrayOutputStream out) {
        if (c.tag == 'n') {
            out.write('n');
            return;
        }
        if (c.items == null) {
            byte[] data = c.payload.getBytes(StandardCharsets.UTF_8);
            out.writeBytes(ascii(c.tag + Integer.toString(data.length) + ":"));
            out.writeBytes(data);
            return;
        }
        int count = c.tag == 'm' ? c.items.size() / 2 : c.items.size();
        out.writeBytes(ascii(c.tag + Integer.toString(count) + ":"));
        for (Canon item : c.items) encodeInto(item, out);
    }

    private static final Set<String> INTEGER_TYPES = Set.of("int", "bigint", "smallint", "tinyint", "varint", "counter");
    private static final Set<String> TEXT_TYPES = Set.of("text", "ascii", "varchar");
    private static final Set<String> SCALAR_TYPES = Set.of(
            "int", "bigint", "smallint", "tinyint", "varint", "counter", "text", "ascii", "varchar", "float",
            "double", "decimal", "boolean", "timestamp", "date", "time", "uuid", "timeuuid", "blob", "inet");

    static Canon canon(Object value, Type type) {
        if (value == null) return Canon.NULL;
        if (type == null) return infer(value);
        String name = type.name;
        if (TEXT_TYPES.contains(name)) {
            if (!(value instanceof String)) throw new HashException("expected text, got " + kind(value));
            return Canon.text(checkedText((String) value));
        }
        if (INTEGER_TYPES.contains(name)) return Canon.scalar('i', integer(value, name));
        switch (name) {
            case "double":
                return Canon.scalar('f', floatPayload(toDouble(value)));
            case "float":
                return Canon.scalar('f', floatPayload(binary32(toDouble(value))));
            case "decimal":
                return Canon.scalar('d', decimalPayload(toDecimal(value)));
            case "boolean":
                return Canon.scalar('b', bool(value));
            case "timestamp":
                return Canon.scalar('t', Long.toString(timestampMs(value)));
            case "date":
                return Canon.scalar('D', Long.toString(dateDays(value)));
            case "time":
                return Canon.scalar('T', Long.toString(timeNanos(value)));
            case "uuid":
            case "timeuuid":
                return Canon.scalar('u', uuid(value, name));
            case "blob":
                return Canon.scalar('x', blob(value));
            case "inet":
                return Canon.scalar('a', inet(value));
            default:
                return collection(value, type);
        }
    }

    private static Canon infer(Object value) {
        if (value instanceof String) return Canon.text(checkedText((String) value));
        if (value instanceof Boolean) return Canon.scalar('b', value.toString());
        if (isIntegerObject(value)) return Canon.scalar('i', integer(value, "varint"));
        if (value instanceof JsonNumber || value instanceof Double || value instanceof Float) {
            return Canon.scalar('f', floatPayload(toDouble(value)));
        }
        if (value instanceof BigDecimal) return Canon.scalar('d', decimalPayload(value));
        if (value instanceof java.util.Date) return Canon.scalar('t', Long.toString(((java.util.Date) value).getTime()));
        if (value instanceof UUID) return Canon.scalar('u', value.toString());
        if (value instanceof byte[] || value instanceof ByteBuffer) return Canon.scalar('x', blob(value));
        return collection(value, null);
    }

    /** Collection columns, in which an empty collection of either JSON shape ([] or {}) is null, as Cassandra
     *  stores it; a tuple is not one (its arity is fixed: [] is refused). */
    private static final Set<String> EMPTY_IS_NULL = Set.of("list", "set", "map", "udt");

    private static Canon collection(Object value, Type type) {
        String name = type == null ? null : type.name;
        List<Type> params = type == null ? List.of() : type.params;
        if (name != null && EMPTY_IS_NULL.contains(name)
                && (value instanceof Map && ((Map<?, ?>) value).isEmpty()
                    || value instanceof Collection && ((Collection<?>) value).isEmpty())) {
            return Canon.NULL;
        }
        if (value instanceof Map && (name == null || name.equals("map") || name.equals("udt"))) {
            Type keyType = params.size() == 2 ? params.get(0) : null;
            Type valueType = params.size() == 2 ? params.get(1) : null;
            TreeMap<byte[], Canon[]> pairs = new TreeMap<>(Arrays::compareUnsigned);
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                Canon key = canon(entry.getKey(), keyType);
                Canon[] previous = pairs.put(encode(key), new Canon[] {key, canon(entry.getValue(), valueType)});
                if (previous != null) {
                    throw new HashException("two map keys are equal as " + (keyType == null ? "text" : keyType)
                            + " after normalisation; a Cassandra map holds each key once");
                }
            }
            List<Canon> items = new ArrayList<>();
            for (Canon[] pair : pairs.values()) {
                items.add(pair[0]);
                items.add(pair[1]);
            }
            return Canon.collection('m', items);
        }
        boolean isSet = value instanceof Set;
        if ("set".equals(name) && value instanceof List || isSet && (name == null || name.equals("set"))) {
            Type elementType = params.isEmpty() ? null : params.get(0);
            TreeMap<byte[], Canon> elements = new TreeMap<>(Arrays::compareUnsigned);
            for (Object element : (Collection<?>) value) {
                Canon item = canon(element, elementType);
                elements.put(encode(item), item); // a set holds each element once
            }
            return Canon.collection('e', new ArrayList<>(elements.values()));
        }
        if (value instanceof List && (name == null || name.equals("list") || name.equals("tuple"))) {
            List<?> list = (List<?>) value;
            List<Canon> items = new ArrayList<>();
            if ("tuple".equals(name) && !params.isEmpty()) {
                if (params.size() != list.size()) {
                    throw new HashException("tuple of " + params.size() + " expected, got " + list.size() + " elements");
                }
                for (int i = 0; i < list.size(); i++) items.add(canon(list.get(i), params.get(i)));
            } else {
                Type elementType = "list".equals(name) && !params.isEmpty() ? params.get(0) : null;
                for (Object element : list) items.add(canon(element, elementType));
            }
            return Canon.collection('l', items);
        }
        throw new HashException("cannot hash a value of type " + kind(value) + (type == null ? "" : " as " + type));
    }

    // ---------------------------------------------------------------- scalars

    static String checkedText(String value) {
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < value.length() && Character.isLowSurrogate(value.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new HashException("text holds a lone UTF-16 surrogate, which is not text");
            }
        }
        return value;
    }

    private static final Pattern INTEGER_TEXT = Pattern.compile("-?[0-9]+");
    private static final BigInteger TOO_BIG = BigInteger.TEN.pow(MAX_NUMBER_CHARS);

    private static boolean isIntegerObject(Object value) {
        return value instanceof BigInteger || value instanceof Long || value instanceof Integer
                || value instanceof Short || value instanceof Byte;
    }

    static BigInteger integral(Object value) {
        if (value instanceof Boolean) throw new HashException("a boolean is not an integer");
        if (isIntegerObject(value)) {
            BigInteger number = value instanceof BigInteger ? (BigInteger) value : BigInteger.valueOf(((Number) value).longValue());
            if (number.abs().compareTo(TOO_BIG) >= 0) throw new HashException("integer longer than " + MAX_NUMBER_CHARS + " digits");
            return number;
        }
        if (value instanceof String) {
            String text = (String) value;
            if (!INTEGER_TEXT.matcher(text).matches()) {
                throw new HashException(text + " is not an integer (ASCII digits with an optional '-' only)");
            }
            // whatever its value, a bounded cost: at most MAX_NUMBER_CHARS digits, the sign not counted
            if (text.length() - (text.startsWith("-") ? 1 : 0) > MAX_NUMBER_CHARS) {
                throw new HashException("integer longer than " + MAX_NUMBER_CHARS + " digits");
            }
            return new BigInteger(text);
        }
        if (value instanceof JsonNumber) return integralNumber(((JsonNumber) value).text, value);
        if (value instanceof Double || value instanceof Float || value instanceof BigDecimal) {
            BigDecimal number;
            if (value instanceof BigDecimal) number = (BigDecimal) value;
            else {
                double d = ((Number) value).doubleValue();
                if (Double.isNaN(d) || Double.isInfinite(d)) throw new HashException(value + " is not an integer");
                number = new BigDecimal(d);
            }
            BigInteger unscaled = number.unscaledValue();
            return integralParts(unscaled.signum() < 0, unscaled.abs().toString(), -(long) number.scale(), value);
        }
        throw new HashException(kind(value) + " is not an integer");
    }

    private static final Pattern NUMBER_PARTS = Pattern.compile("(-?)([0-9]+)(?:\\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?");

    /** The integer a JSON number's text spells (5.0, 1e2, -1e999), from its digits and exponent: a zero is 0
     *  whatever its exponent (0e2147483648), and no exponent overflows an int on the way. */
    static BigInteger integralNumber(String text, Object shown) {
        Matcher match = NUMBER_PARTS.matcher(text);
        if (!match.matches()) throw new HashException(shown + " is not an integer");
        String fraction = match.group(3) == null ? "" : match.group(3);
        String exponentText = match.group(4) == null ? "0" : match.group(4);
        BigInteger exponent = new BigInteger(exponentText.startsWith("+") ? exponentText.substring(1) : exponentText)
            .subtract(BigInteger.valueOf(fraction.length()));
        String digits = match.group(2) + fraction;
        if (digits.chars().allMatch(c -> c == '0')) return BigInteger.ZERO;
        // past this, the value is longer than the limit or not an integer, whichever its sign says
        BigInteger bound = BigInteger.valueOf(4L * MAX_NUMBER_CHARS + digits.length());
        if (exponent.abs().compareTo(bound) > 0) {
            if (exponent.signum() > 0) throw new HashException("integer longer than " + MAX_NUMBER_CHARS + " digits");
            throw new HashException(shown + " is not an integer");
        }
        return integralParts(!match.group(1).isEmpty(), digits, exponent.longValueExact(), shown);
    }

    /** sign x digits x 10^exponent, if that is an integer of at most MAX_NUMBER_CHARS digits (the sign not counted). */
    static BigInteger integralParts(boolean negative, String digits, long exponent, Object shown) {
        int start = 0;
        while (start < digits.length() && digits.charAt(start) == '0') start++;
        if (start == digits.length()) return BigInteger.ZERO;
        int end = digits.length();
        while (digits.charAt(end - 1) == '0') end--;
        exponent += digits.length() - end;
        String trimmed = digits.substring(start, end);
        if (exponent < 0) throw new HashException(shown + " is not an integer");
        if (trimmed.length() + exponent > MAX_NUMBER_CHARS) {
            throw new HashException("integer longer than " + MAX_NUMBER_CHARS + " digits");
        }
        BigInteger number = new BigInteger(trimmed).multiply(BigInteger.TEN.pow((int) exponent));
        return negative ? number.negate() : number;
    }

    static String integer(Object value, String name) {
        BigInteger number = integral(value);
        int bits;
        switch (name) {
            case "tinyint": bits = 8; break;
            case "smallint": bits = 16; break;
            case "int": bits = 32; break;
            case "bigint": case "counter": bits = 64; break;
            default: bits = 0;
        }
        if (bits > 0 && number.bitLength() > bits - 1) {
            throw new HashException(number + " is outside the " + name + " range");
        }
        String text = number.toString();
        if (text.length() - (number.signum() < 0 ? 1 : 0) > MAX_NUMBER_CHARS) {
            throw new HashException("integer longer than " + MAX_NUMBER_CHARS + " digits");
        }
        return text;
    }

    private static final Pattern JSON_NUMBER_TEXT = Pattern.compile("-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?");

    static double toDouble(Object value) {
        double number;
        if (value instanceof Boolean) throw new HashException("a boolean is not a number");
        if (value instanceof JsonNumber) {
            number = Double.parseDouble(((JsonNumber) value).text);
        } else if (value instanceof Double) {
            return (Double) value;
        } else if (value instanceof Float) {
            return (double) (Float) value; // a binary32 widens exactly
        } else if (value instanceof String) {
            String text = (String) value;
            if (text.equals("NaN")) return Double.NaN;
            if (text.equals("Infinity")) return Double.POSITIVE_INFINITY;
            if (text.equals("-Infinity")) return Double.NEGATIVE_INFINITY;
            if (!JSON_NUMBER_TEXT.matcher(text).matches()) {
                throw new HashException(text + " is not a number (JSON number syntax, or exactly NaN, Infinity, -Infinity)");
            }
            number = Double.parseDouble(text);
        } else if (isIntegerObject(value) || value instanceof BigDecimal) {
            number = Double.parseDouble(value.toString()); // correctly rounded, as Python's float()
        } else {
            throw new HashException(kind(value) + " is not a number");
        }
        if (Double.isInfinite(number)) throw new HashException(value + " is outside the double range");
        return number;
    }

    static double binary32(double value) {
        if (Double.isNaN(value) || Double.isInfinite(value)) return value;
        float rounded = (float) value; // nearest, ties to even
        if (Float.isInfinite(rounded)) throw new HashException(value + " is outside the float (binary32) range");
        return rounded;
    }

    static String floatPayload(double value) {
        if (Double.isNaN(value)) return "7ff8000000000000";
        if (value == 0.0) value = 0.0;
        return String.format("%016x", Double.doubleToRawLongBits(value));
    }

    private static final Pattern DECIMAL_TEXT = Pattern.compile("-?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?");

    /** A BigDecimal, or one of the strings NaN, Infinity, -Infinity (BigDecimal has no such values). */
    static Object toDecimal(Object value) {
        if (value instanceof Boolean) throw new HashException("a boolean is not a decimal");
        if (value instanceof JsonNumber) return bigDecimal(((JsonNumber) value).text);
        if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            if (Double.isNaN(d)) return "NaN";
            if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
            return new BigDecimal(shortest(d)); // the shortest text that reads back as this double
        }
        if (isIntegerObject(value)) return new BigDecimal(integral(value));
        if (value instanceof BigDecimal) return value;
        if (value instanceof String) {
            String text = (String) value;
            if (text.equals("NaN") || text.equals("Infinity") || text.equals("-Infinity")) return text;
            if (DECIMAL_TEXT.matcher(text).matches()) return bigDecimal(text);
            throw new HashException(text + " is not a decimal (digits with an optional '-', '.' and exponent; or exactly NaN, Infinity, -Infinity)");
        }
        throw new HashException(kind(value) + " is not a decimal");
    }

    /** BigDecimal's exponent is an int; one beyond it is far past the length limit, so it is refused as too long. */
    private static BigDecimal bigDecimal(String text) {
        try {
            return new BigDecimal(text);
        } catch (NumberFormatException | ArithmeticException exc) {
            throw new HashException("decimal longer than " + MAX_NUMBER_CHARS + " characters in plain notation");
        }
    }

    static String decimalPayload(Object value) {
        if (value instanceof String) return (String) value;
        BigDecimal number = (BigDecimal) value;
        if (number.signum() == 0) return "0";
        try {
            number = number.stripTrailingZeros();
        } catch (ArithmeticException exc) {
            throw new HashException("decimal longer than " + MAX_NUMBER_CHARS + " characters in plain notation");
        }
        long digits = number.precision();
        long exponent = -(long) number.scale();
        long length = exponent >= 0 ? digits + exponent : (digits > -exponent ? digits + 1 : 2 - exponent);
        if (length + (number.signum() < 0 ? 1 : 0) > MAX_NUMBER_CHARS) {
            throw new HashException("decimal longer than " + MAX_NUMBER_CHARS + " characters in plain notation");
        }
        if (number.scale() < 0) number = number.setScale(0);
        return number.toPlainString();
    }

    /** Python's repr digits: the shortest decimal that reads back as d; of those, the nearest to d. */
    static String shortest(double d) {
        BigDecimal exact = new BigDecimal(d);
        for (int precision = 1; precision <= 17; precision++) {
            BigDecimal best = null;
            for (RoundingMode mode : new RoundingMode[] {RoundingMode.FLOOR, RoundingMode.CEILING}) {
                BigDecimal candidate = exact.round(new MathContext(precision, mode));
                if (Double.parseDouble(candidate.toString()) != d) continue;
                if (best == null || candidate.subtract(exact).abs().compareTo(best.subtract(exact).abs()) < 0) best = candidate;
            }
            if (best != null) return best.toString();
        }
        return exact.round(MathContext.DECIMAL64).toString();
    }

    static String bool(Object value) {
        if (value instanceof Boolean) return value.toString();
        if (value instanceof String) {
            String text = (String) value;
            if (text.equalsIgnoreCase("true") && isAscii(text)) return "true";
            if (text.equalsIgnoreCase("false") && isAscii(text)) return "false";
        }
        throw new HashException(value + " is not a boolean");
    }

    private static final Pattern TIMESTAMP_TEXT = Pattern.compile(
            "([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})");

    static long timestampMs(Object value) {
        if (value instanceof java.util.Date) return ((java.util.Date) value).getTime();
        if (value instanceof String) {
            Matcher m = TIMESTAMP_TEXT.matcher((String) value);
            if (!m.matches()) throw new HashException(value + " is not a timestamp (YYYY-MM-DDTHH:MM:SS[.fffffffff] with Z or ±HH:MM)");
            long days = civilDays(m.group(1), m.group(2), m.group(3));
            checkClock(m.group(4), m.group(5), m.group(6));
            String zone = m.group(8);
            long offset = 0;
            if (!zone.equals("Z")) {
                int hours = Integer.parseInt(zone.substring(1, 3));
                int minutes = Integer.parseInt(zone.substring(4, 6));
                if (hours > 23 || minutes > 59) throw new HashException(value + " has a zone offset outside ±23:59");
                offset = (hours * 60L + minutes) * (zone.charAt(0) == '+' ? 1 : -1);
            }
            long seconds = days * 86_400 + Integer.parseInt(m.group(4)) * 3600L + Integer.parseInt(m.group(5)) * 60L
                    + Integer.parseInt(m.group(6)) - offset * 60;
            String fraction = m.group(7) == null ? "000" : (m.group(7) + "00").substring(0, 3);
            return seconds * 1000 + Integer.parseInt(fraction);
        }
        if (value instanceof Number || value instanceof JsonNumber) {
            BigInteger ms = integral(value);
            if (ms.bitLength() > 63) throw new HashException(ms + " epoch milliseconds is outside the signed 64-bit range");
            return ms.longValueExact();
        }
        throw new HashException(kind(value) + " is not a timestamp");
    }

    private static long civilDays(String year, String month, String day) {
        try {
            int y = Integer.parseInt(year);
            if (y < 1) throw new java.time.DateTimeException("year 0");
            return LocalDate.of(y, Integer.parseInt(month), Integer.parseInt(day)).toEpochDay();
        } catch (java.time.DateTimeException exc) {
            throw new HashException(year + "-" + month + "-" + day + " is not a calendar date (years 0001-9999)");
        }
    }

    private static void checkClock(String hour, String minute, String second) {
        if (Integer.parseInt(hour) > 23 || Integer.parseInt(minute) > 59 || Integer.parseInt(second) > 59) {
            throw new HashException(hour + ":" + minute + ":" + second + " is not a time of day (00:00:00 to 23:59:59)");
        }
    }

    private static final Pattern DATE_TEXT = Pattern.compile("([0-9]{4})-([0-9]{2})-([0-9]{2})");

    static long dateDays(Object value) {
        if (value instanceof LocalDate) return ((LocalDate) value).toEpochDay();
        if (value instanceof String) {
            Matcher m = DATE_TEXT.matcher((String) value);
            if (!m.matches()) throw new HashException(value + " is not a date (YYYY-MM-DD)");
            return civilDays(m.group(1), m.group(2), m.group(3));
        }
        if (value instanceof Number || value instanceof JsonNumber) {
            BigInteger days = integral(value);
            if (days.bitLength() > 31) throw new HashException(days + " days is outside Cassandra's date range");
            return days.longValue();
        }
        throw new HashException(kind(value) + " is not a date");
    }

    private static final Pattern TIME_TEXT = Pattern.compile("([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\\.([0-9]{1,9}))?");
    private static final long NANOS_PER_DAY = 86_400L * 1_000_000_000L;

    static long timeNanos(Object value) {
        if (value instanceof java.time.LocalTime) return ((java.time.LocalTime) value).toNanoOfDay();
        if (value instanceof String) {
            Matcher m = TIME_TEXT.matcher((String) value);
            if (!m.matches()) throw new HashException(value + " is not HH:MM:SS[.fffffffff]");
            checkClock(m.group(1), m.group(2), m.group(3));
            String fraction = m.group(4) == null ? "0" : m.group(4);
            long nanos = Long.parseLong((fraction + "000000000").substring(0, 9));
            return ((Long.parseLong(m.group(1)) * 60 + Long.parseLong(m.group(2))) * 60 + Long.parseLong(m.group(3)))
                    * 1_000_000_000L + nanos;
        }
        if (value instanceof Number || value instanceof JsonNumber) {
            BigInteger nanos = integral(value);
            if (nanos.signum() < 0 || nanos.compareTo(BigInteger.valueOf(NANOS_PER_DAY)) >= 0) {
                throw new HashException(nanos + " nanoseconds is outside a day");
            }
            return nanos.longValue();
        }
        throw new HashException(kind(value) + " is not a time");
    }

    private static final Pattern UUID_TEXT = Pattern.compile(
            "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}");

    static String uuid(Object value, String name) {
        String text;
        if (value instanceof UUID) {
            text = value.toString();
        } else if (value instanceof String) {
            String raw = (String) value;
            long hyphens = raw.chars().filter(c -> c == '-').count();
            if (!UUID_TEXT.matcher(raw).matches() || (hyphens != 0 && hyphens != 4)) {
                throw new HashException(raw + " is not a UUID (8-4-4-4-12 hex digits, or 32 without hyphens)");
            }
            String digits = raw.replace("-", "").toLowerCase(java.util.Locale.ROOT);
            text = digits.substring(0, 8) + "-" + digits.substring(8, 12) + "-" + digits.substring(12, 16) + "-"
                    + digits.substring(16, 20) + "-" + digits.substring(20);
        } else {
            throw new HashException(kind(value) + " is not a UUID");
        }
        if (name.equals("timeuuid") && text.charAt(14) != '1') {
            throw new HashException(text + " is a version " + text.charAt(14) + " UUID; a timeuuid is version 1");
        }
        return text;
    }

    private static final Pattern BLOB_TEXT = Pattern.compile("(?:0[xX])?(?:[0-9a-fA-F]{2})*");

    static String blob(Object value) {
        if (value instanceof byte[]) return hex((byte[]) value);
        if (value instanceof ByteBuffer) {
            ByteBuffer buffer = ((ByteBuffer) value).duplicate();
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            return hex(bytes);
        }
        if (value instanceof String) {
            String text = (String) value;
            if (!BLOB_TEXT.matcher(text).matches()) throw new HashException(text + " is not a blob (pairs of hex digits, optionally after 0x)");
            if (text.startsWith("0x") || text.startsWith("0X")) text = text.substring(2);
            return text.toLowerCase(java.util.Locale.ROOT);
        }
        throw new HashException(kind(value) + " is not a blob");
    }

    private static final Pattern INET_TEXT = Pattern.compile("[0-9A-Fa-f:.]+");

    /** IPv4 dotted quad; IPv6 per RFC 5952, IPv4-mapped addresses in the mixed form of its section 5. */
    static String inet(Object value) {
        if (!(value instanceof String)) throw new HashException(kind(value) + " is not an IP address");
        String text = (String) value;
        if (!INET_TEXT.matcher(text).matches()) throw new HashException(text + " is not an IP address (no zone, prefix or brackets)");
        long v4 = ipv4(text);
        if (v4 >= 0) return dottedQuad(v4);
        int[] hextets = ipv6(text);
        if (hextets == null) throw new HashException(text + " is not an IPv4 or IPv6 address");
        boolean mapped = hextets[5] == 0xffff;
        for (int i = 0; i < 5; i++) mapped &= hextets[i] == 0;
        if (mapped) return "::ffff:" + dottedQuad(((long) hextets[6] << 16) | hextets[7]);
        int bestStart = -1, bestLength = 0;
        for (int i = 0; i < 8; ) {
            if (hextets[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && hextets[j] == 0) j++;
            if (j - i > bestLength) {
                bestStart = i;
                bestLength = j - i;
            }
            i = j;
        }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (bestLength > 1 && i == bestStart) {
                out.append("::");
                i += bestLength - 1;
                continue;
            }
            if (out.length() > 0 && out.charAt(out.length() - 1) != ':') out.append(':');
            out.append(Integer.toHexString(hextets[i]));
        }
        return out.toString();
    }

    /** The address as a number, or -1 when text is not a dotted quad (no leading zeros, octets 0-255). */
    private static long ipv4(String text) {
        String[] octets = text.split("\\.", -1);
        if (octets.length != 4) return -1;
        long address = 0;
        for (String octet : octets) {
            if (octet.isEmpty() || octet.length() > 3 || !octet.chars().allMatch(c -> c >= '0' && c <= '9')) return -1;
            if (octet.length() > 1 && octet.charAt(0) == '0') return -1;
            int number = Integer.parseInt(octet);
            if (number > 255) return -1;
            address = address << 8 | number;
        }
        return address;
    }

    private static String dottedQuad(long address) {
        return (address >> 24 & 255) + "." + (address >> 16 & 255) + "." + (address >> 8 & 255) + "." + (address & 255);
    }

    /** Eight hextets, or null when text is not an IPv6 address (the rules of RFC 4291 section 2.2). */
    private static int[] ipv6(String text) {
        List<String> parts = new ArrayList<>(Arrays.asList(text.split(":", -1)));
        if (parts.size() < 3) return null;
        if (parts.get(parts.size() - 1).contains(".")) {
            long v4 = ipv4(parts.remove(parts.size() - 1));
            if (v4 < 0) return null;
            parts.add(Long.toHexString(v4 >> 16 & 0xffff));
            parts.add(Long.toHexString(v4 & 0xffff));
        }
        if (parts.size() > 9) return null;
        int skip = -1;
        for (int i = 1; i < parts.size() - 1; i++) {
            if (parts.get(i).isEmpty()) {
                if (skip >= 0) return null;
                skip = i;
            }
        }
        int high, low, skipped;
        if (skip >= 0) {
            high = skip;
            low = parts.size() - skip - 1;
            if (parts.get(0).isEmpty() && --high != 0) return null;
            if (parts.get(parts.size() - 1).isEmpty() && --low != 0) return null;
            skipped = 8 - (high + low);
            if (skipped < 1) return null;
        } else {
            if (parts.size() != 8 || parts.get(0).isEmpty() || parts.get(7).isEmpty()) return null;
            high = 8;
            low = 0;
            skipped = 0;
        }
        int[] hextets = new int[8];
        int at = 0;
        for (int i = 0; i < high; i++) {
            Integer hextet = hextet(parts.get(i));
            if (hextet == null) return null;
            hextets[at++] = hextet;
        }
        at += skipped;
        for (int i = parts.size() - low; i < parts.size(); i++) {
            Integer hextet = hextet(parts.get(i));
            if (hextet == null) return null;
            hextets[at++] = hextet;
        }
        return hextets;
    }

    private static Integer hextet(String part) {
        if (part.isEmpty() || part.length() > 4) return null;
        for (char c : part.toCharArray()) if (Character.digit(c, 16) < 0 || c > 'f') return null;
        return Integer.parseInt(part, 16);
    }

    // ---------------------------------------------------------------- declared types

    private static final Pattern TOKEN = Pattern.compile("\\s*([A-Za-z_][A-Za-z0-9_]*|<|>|,)");

    public static Type parseType(String text) {
        List<String> tokens = new ArrayList<>();
        Matcher m = TOKEN.matcher(text);
        StringBuilder joined = new StringBuilder();
        while (m.find()) {
            tokens.add(m.group(1));
            joined.append(m.group(1));
        }
        if (!joined.toString().equals(text.replaceAll("\\s+", ""))) throw new HashException("cannot parse column type " + text);
        int[] at = {0};
        Type parsed = parseTokens(tokens, at, text);
        if (at[0] != tokens.size()) throw new HashException("trailing characters in column type " + text);
        return parsed;
    }

    private static Type parseTokens(List<String> tokens, int[] at, String text) {
        if (at[0] >= tokens.size() || "<>,".contains(tokens.get(at[0]))) throw new HashException("cannot parse column type " + text);
        String name = tokens.get(at[0]++).toLowerCase(java.util.Locale.ROOT);
        List<Type> params = new ArrayList<>();
        if (at[0] < tokens.size() && tokens.get(at[0]).equals("<")) {
            at[0]++;
            while (true) {
                params.add(parseTokens(tokens, at, text));
                if (at[0] >= tokens.size()) throw new HashException("unclosed '<' in column type " + text);
                String next = tokens.get(at[0]++);
                if (next.equals(">")) break;
                if (!next.equals(",")) throw new HashException("expected ',' or '>' in column type " + text);
            }
        }
        if (name.equals("frozen")) {
            if (params.size() != 1) throw new HashException("frozen<> takes one type in " + text);
            return params.get(0);
        }
        if (SCALAR_TYPES.contains(name) || name.equals("udt")) {
            if (!params.isEmpty()) throw new HashException(name + " takes no type parameters in " + text);
        } else if (name.equals("list") || name.equals("set") || name.equals("map")) {
            int arity = name.equals("map") ? 2 : 1;
            if (!params.isEmpty() && params.size() != arity) throw new HashException(name + " takes " + arity + " type parameter(s) in " + text);
        } else if (!name.equals("tuple")) {
            throw new HashException("unsupported column type " + name);
        }
        return new Type(name, List.copyOf(params));
    }

    /** "a=timestamp,b=map<text,int>": commas inside angle brackets belong to the type. */
    public static Map<String, String> parseTypeDeclarations(String text) {
        Map<String, String> declarations = new LinkedHashMap<>();
        if (text == null || text.isEmpty()) return declarations;
        int depth = 0;
        StringBuilder current = new StringBuilder();
        for (char c : (text + ",").toCharArray()) {
            if (c == ',' && depth == 0) {
                String declaration = current.toString();
                int eq = declaration.indexOf('=');
                String name = eq < 0 ? "" : declaration.substring(0, eq).strip();
                String type = eq < 0 ? "" : declaration.substring(eq + 1).strip();
                if (name.isEmpty() || type.isEmpty()) throw new HashException("bad type declaration " + declaration + "; expected column=type");
                if (declarations.containsKey(name)) throw new HashException("column " + name + " is declared twice");
                parseType(type);
                declarations.put(name, type);
                current.setLength(0);
                continue;
            }
            depth += c == '<' ? 1 : c == '>' ? -1 : 0;
            if (depth < 0) throw new HashException("unbalanced '>' in type declaration " + current + c);
            current.append(c);
        }
        if (depth != 0) throw new HashException("unclosed '<' in type declaration " + current);
        return declarations;
    }

    // ---------------------------------------------------------------- exact JSON

    /** One JSON value, exactly: integers as BigInteger, other numbers as JsonNumber; ambiguity refused. */
    public static Object parseJson(String text) {
        JsonReader reader = new JsonReader(text);
        reader.skipWhitespace();
        Object value = reader.value(1);
        reader.skipWhitespace();
        if (reader.at != text.length()) throw new HashException("not valid JSON: extra data at character " + reader.at);
        return value;
    }

    private static final class JsonReader {
        final String text;
        int at;

        JsonReader(String text) {
            this.text = text;
        }

        HashException error(String what) {
            return new HashException("not valid JSON: " + what + " at character " + at);
        }

        void skipWhitespace() {
            while (at < text.length() && " \t\n\r".indexOf(text.charAt(at)) >= 0) at++;
        }

        Object value(int depth) {
            if (at >= text.length()) throw error("expecting a value");
            char c = text.charAt(at);
            if (c == '{' || c == '[') {
                if (depth > MAX_DEPTH) throw new HashException("nested deeper than " + MAX_DEPTH + " levels");
                return c == '{' ? object(depth) : array(depth);
            }
            if (c == '"') return string();
            if (text.startsWith("true", at)) { at += 4; return Boolean.TRUE; }
            if (text.startsWith("false", at)) { at += 5; return Boolean.FALSE; }
            if (text.startsWith("null", at)) { at += 4; return null; }
            if (text.startsWith("NaN", at) || text.startsWith("Infinity", at) || text.startsWith("-Infinity", at)) {
                throw new HashException("NaN and Infinity are not JSON");
            }
            return number();
        }

        Map<String, Object> object(int depth) {
            at++;
            Map<String, Object> map = new LinkedHashMap<>();
            skipWhitespace();
            if (at < text.length() && text.charAt(at) == '}') { at++; return map; }
            while (true) {
                skipWhitespace();
                if (at >= text.length() || text.charAt(at) != '"') throw error("expecting a property name");
                String key = string();
                skipWhitespace();
                if (at >= text.length() || text.charAt(at) != ':') throw error("expecting ':'");
                at++;
                skipWhitespace();
                Object value = value(depth + 1);
                if (map.containsKey(key)) throw new HashException("duplicate key " + key + " in a JSON object");
                map.put(key, value);
                skipWhitespace();
                if (at < text.length() && text.charAt(at) == ',') { at++; continue; }
                if (at < text.length() && text.charAt(at) == '}') { at++; return map; }
                throw error("expecting ',' or '}'");
            }
        }

        List<Object> array(int depth) {
            at++;
            List<Object> list = new ArrayList<>();
            skipWhitespace();
            if (at < text.length() && text.charAt(at) == ']') { at++; return list; }
            while (true) {
                skipWhitespace();
                list.add(value(depth + 1));
                skipWhitespace();
                if (at < text.length() && text.charAt(at) == ',') { at++; continue; }
                if (at < text.length() && text.charAt(at) == ']') { at++; return list; }
                throw error("expecting ',' or ']'");
            }
        }

        String string() {
            at++;
            StringBuilder out = new StringBuilder();
            while (true) {
                if (at >= text.length()) throw error("unterminated string");
                char c = text.charAt(at++);
                if (c == '"') return out.toString();
                if (c < 0x20) throw error("control character in a string");
                if (c != '\\') { out.append(c); continue; }
                if (at >= text.length()) throw error("unterminated string");
                char e = text.charAt(at++);
                switch (e) {
                    case '"': out.append('"'); break;
                    case '\\': out.append('\\'); break;
                    case '/': out.append('/'); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'n': out.append('\n'); break;
                    case 'r': out.append('\r'); break;
                    case 't': out.append('\t'); break;
                    case 'u': out.append(unicodeEscape()); break;
                    default: throw error("invalid escape");
                }
            }
        }

        char unicodeEscape() {
            if (at + 4 > text.length()) throw error("invalid \\u escape");
            int code = 0;
            for (int i = 0; i < 4; i++) {
                int digit = Character.digit(text.charAt(at + i), 16);
                if (digit < 0 || text.charAt(at + i) > 'f') throw error("invalid \\u escape");
                code = code * 16 + digit;
            }
            at += 4;
            return (char) code;
        }

        Object number() {
            int start = at;
            if (at < text.length() && text.charAt(at) == '-') at++;
            if (at >= text.length() || !isDigit(text.charAt(at))) throw error("expecting a value");
            if (text.charAt(at) == '0') at++;
            else while (at < text.length() && isDigit(text.charAt(at))) at++;
            boolean integer = true;
            if (at + 1 < text.length() && text.charAt(at) == '.' && isDigit(text.charAt(at + 1))) {
                integer = false;
                at++;
                while (at < text.length() && isDigit(text.charAt(at))) at++;
            }
            if (at < text.length() && (text.charAt(at) == 'e' || text.charAt(at) == 'E')) {
                int mark = at++;
                if (at < text.length() && (text.charAt(at) == '+' || text.charAt(at) == '-')) at++;
                if (at < text.length() && isDigit(text.charAt(at))) {
                    integer = false;
                    while (at < text.length() && isDigit(text.charAt(at))) at++;
                } else {
                    at = mark; // as Python's scanner: the exponent is not part of the number
                }
            }
            String literal = text.substring(start, at);
            if (!integer) return new JsonNumber(literal);
            if (literal.length() - (literal.startsWith("-") ? 1 : 0) > MAX_JSON_INTEGER_DIGITS) {
                throw new HashException("not valid JSON: an integer longer than " + MAX_JSON_INTEGER_DIGITS + " digits");
            }
            return new BigInteger(literal);
        }

        static boolean isDigit(char c) {
            return c >= '0' && c <= '9';
        }
    }

    // ---------------------------------------------------------------- helpers

    private static boolean isAscii(String text) {
        return text.chars().allMatch(c -> c < 0x80);
    }

    private static String kind(Object value) {
        if (value instanceof String) return "str";
        if (value instanceof Map) return "dict";
        if (value instanceof List) return "list";
        return value.getClass().getSimpleName();
    }

    private static byte[] ascii(String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException exc) {
            throw new IllegalStateException("the JDK has no SHA-256", exc);
        }
    }

    static String hex(byte[] data) {
        StringBuilder out = new StringBuilder(data.length * 2);
        for (byte b : data) out.append(Character.forDigit(b >> 4 & 15, 16)).append(Character.forDigit(b & 15, 16));
        return out.toString();
    }

    /** Compact JSON text of a string as orjson writes it: UTF-8 as is, only quote, backslash and controls escaped. */
    static String jsonString(String value) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                default:
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
            }
        }
        return out.append('"').toString();
    }

    // ---------------------------------------------------------------- the command

    public static void main(String[] args) throws IOException {
        String fieldsText = null, typesText = null, strategy = "v2";
        boolean columns = false;
        PrintStream err = new PrintStream(System.err, true, StandardCharsets.UTF_8);
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--shortest": // a self-check: binary64 bit patterns (hex) in, shortest round-trip decimals out
                    for (String bits : new String(System.in.readAllBytes(), StandardCharsets.US_ASCII).split("\n")) {
                        if (!bits.isBlank()) System.out.println(shortest(Double.longBitsToDouble(Long.parseUnsignedLong(bits.strip(), 16))));
                    }
                    return;
                case "--fields": fieldsText = args[++i]; break;
                case "--types": typesText = args[++i]; break;
                case "--strategy": strategy = args[++i]; break;
                case "--algorithm":
                    if (!args[++i].equals("sha256")) { err.println("DqHash: unsupported hash algorithm " + args[i]); System.exit(2); }
                    break;
                case "--columns": columns = true; break;
                default: err.println("DqHash: unknown argument " + args[i]); System.exit(2);
            }
        }
        if (!strategy.equals("v2")) {
            err.println("DqHash: this implementation hashes strategy v2 only");
            System.exit(2);
        }
        DqHash hasher;
        try {
            List<String> fields = null;
            if (fieldsText != null) {
                fields = new ArrayList<>();
                for (String part : fieldsText.split(",", -1)) fields.add(part.strip());
            }
            hasher = new DqHash(fields, parseTypeDeclarations(typesText));
        } catch (HashException exc) {
            err.println("DqHash: " + exc.getMessage());
            System.exit(2);
            return;
        }
        int status = run(hasher, System.in, new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8), err, columns);
        System.exit(status);
    }

    static int run(DqHash hasher, InputStream in, PrintStream out, PrintStream err, boolean columns) throws IOException {
        byte[] input = in.readAllBytes();
        int bad = 0, number = 0, start = 0;
        StringBuilder output = new StringBuilder();
        while (start < input.length) {
            int end = start;
            while (end < input.length && input[end] != '\n') end++;
            number++;
            String line;
            try {
                line = hashLine(hasher, Arrays.copyOfRange(input, start, end), number, columns);
            } catch (HashException | StackOverflowError exc) {
                bad++;
                err.println("DqHash: line " + number + ": " + (exc instanceof StackOverflowError ? "nested too deeply" : exc.getMessage()));
                line = "";
            }
            output.append(line).append('\n');
            start = end + 1;
        }
        out.print(output);
        out.flush();
        if (bad > 0) err.println("DqHash: " + bad + " bad line(s); the others were hashed");
        return bad > 0 ? 1 : 0;
    }

    private static String hashLine(DqHash hasher, byte[] bytes, int number, boolean columns) {
        boolean blank = true;
        for (byte b : bytes) blank &= b == ' ' || b == '\t' || b == '\r' || b == '\n';
        if (blank) throw new HashException("blank line; expected a JSON object");
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException exc) {
            throw new HashException("not valid UTF-8");
        }
        Object row = parseJson(text);
        if (!(row instanceof Map)) throw new HashException("expected a JSON object, got " + (row == null ? "NoneType" : kind(row)));
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) row;
        String hash = hasher.hash(map);
        if (!columns) return hash;
        StringBuilder out = new StringBuilder("{\"line\":").append(number).append(",\"hash\":\"").append(hash).append("\",\"columns\":{");
        boolean first = true;
        for (Map.Entry<String, String> digest : hasher.columnDigests(map).entrySet()) {
            out.append(first ? "" : ",").append(jsonString(digest.getKey())).append(":\"").append(digest.getValue()).append('"');
            first = false;
        }
        return out.append("}}").toString();
    }
}
