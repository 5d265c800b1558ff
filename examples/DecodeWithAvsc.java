/*
 * Decode TritonTube messages with nothing but the Apache Avro Java library and the .avsc files.
 *
 *   CP=/usr/share/java/avro.jar:/usr/share/java/jackson-core-asl.jar:\
 *      /usr/share/java/jackson-mapper-asl.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar
 *   java -cp "$CP" examples/DecodeWithAvsc.java SCHEMA_DIR FILE...     # one raw message per file
 *   java -cp "$CP" examples/DecodeWithAvsc.java SCHEMA_DIR < lines     # "LABEL<TAB>HEX" per line
 *
 * (Debian: apt-get install libavro-java; tested with Avro 1.8.2 on Java 17.)
 *
 * Each message is Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO fingerprint
 * (8 bytes, little endian), the Avro binary body. Avro's own BinaryMessageDecoder reads it, with
 * one decoder per record type that knows every version of that type (SCHEMA_DIR/*.avsc and
 * SCHEMA_DIR/history/<version>/*.avsc) and resolves it to the current one.
 *
 * Messages written by TritonTube before issue 21 carry the 8 fingerprint bytes reversed. A message
 * whose fingerprint no decoder knows is tried once more with those 8 bytes reversed and, if that
 * decodes, reported with "legacy": true. Prints one JSON line per message, the value in Avro's JSON
 * encoding, or the error; then a count on stderr. Exit status 1 when any message failed.
 */

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.Encoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.MissingSchemaException;

public class DecodeWithAvsc {

    /** Every schema of one folder, named types resolved across its files (any order). */
    static List<Schema> parseFolder(File folder) throws IOException {
        File[] files = folder.listFiles((dir, name) -> name.endsWith(".avsc"));
        if (files == null) return new ArrayList<>();
        Arrays.sort(files);
        List<File> pending = new ArrayList<>(Arrays.asList(files));
        Map<String, Schema> known = new LinkedHashMap<>();
        while (!pending.isEmpty()) {
            List<File> rest = new ArrayList<>();
            SchemaParseException last = null;
            for (File f : pending) {
                Schema.Parser parser = new Schema.Parser();
                parser.addTypes(known);
                try {
                    Schema s = parser.parse(f);
                    known.putAll(parser.getTypes());
                    known.put(s.getFullName(), s);
                } catch (SchemaParseException e) {
                    rest.add(f); // references a type of a file not parsed yet
                    last = e;
                }
            }
            if (rest.size() == pending.size()) throw last;
            pending = rest;
        }
        List<Schema> out = new ArrayList<>();
        for (File f : files) {
            String full = f.getName().substring(0, f.getName().length() - ".avsc".length());
            out.add(known.get(full));
        }
        return out;
    }

    static String json(Schema schema, Object value) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Encoder enc = EncoderFactory.get().jsonEncoder(schema, out);
        new GenericDatumWriter<Object>(schema).write(value, enc);
        enc.flush();
        return out.toString(StandardCharsets.UTF_8);
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    final Map<String, BinaryMessageDecoder<Object>> decoders = new LinkedHashMap<>();
    final Map<String, Schema> current = new LinkedHashMap<>();

    DecodeWithAvsc(File dir) throws IOException {
        for (Schema s : parseFolder(dir)) {
            current.put(s.getFullName(), s);
            decoders.put(s.getFullName(), new BinaryMessageDecoder<>(GenericData.get(), s));
        }
        File[] versions = new File(dir, "history").listFiles(File::isDirectory);
        if (versions != null) {
            for (File v : versions) {
                for (Schema old : parseFolder(v)) {
                    BinaryMessageDecoder<Object> d = decoders.get(old.getFullName());
                    if (d != null) d.addSchema(old);
                }
            }
        }
    }

    /** The record's full name and its value; MissingSchemaException when no decoder knows it. */
    Object[] decode(byte[] data) throws IOException {
        for (Map.Entry<String, BinaryMessageDecoder<Object>> e : decoders.entrySet()) {
            try {
                return new Object[] {e.getKey(), e.getValue().decode(data)};
            } catch (MissingSchemaException notThisType) {
                // the fingerprint belongs to another record type's decoder
            }
        }
        throw new MissingSchemaException("no schema with this fingerprint");
    }

    /** 0: decoded, 1: decoded in the legacy byte order, 2: failed; set by {@link #line}. */
    int status;

    String line(String label, byte[] data) {
        status = 2;
        String head = "{\"label\":" + quote(label) + ",";
        try {
            boolean legacy = false;
            Object[] found;
            try {
                found = decode(data);
            } catch (MissingSchemaException e) {
                if (data.length < 10) throw e;
                byte[] swapped = data.clone();
                for (int i = 0; i < 8; i++) swapped[2 + i] = data[9 - i];
                found = decode(swapped);
                legacy = true;
            }
            String name = (String) found[0];
            String value = json(current.get(name), found[1]);
            status = legacy ? 1 : 0;
            return head + "\"record\":" + quote(name) + ",\"legacy\":" + legacy
                    + ",\"value\":" + value + "}";
        } catch (Exception e) {
            return head + "\"error\":" + quote(e.getClass().getSimpleName() + ": " + e.getMessage()) + "}";
        }
    }

    static byte[] unhex(String hex) {
        byte[] out = new byte[hex.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: DecodeWithAvsc SCHEMA_DIR [FILE...]  (no FILE: LABEL<TAB>HEX lines on stdin)");
            System.exit(2);
        }
        DecodeWithAvsc decoder = new DecodeWithAvsc(new File(args[0]));
        int ok = 0, legacy = 0, failed = 0;
        List<String[]> inputs = new ArrayList<>();
        if (args.length > 1) {
            for (int i = 1; i < args.length; i++) inputs.add(new String[] {args[i], null});
        } else {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String l; (l = in.readLine()) != null; ) {
                if (l.isEmpty()) continue;
                int tab = l.lastIndexOf('\t');
                inputs.add(new String[] {tab < 0 ? "" : l.substring(0, tab), l.substring(tab + 1)});
            }
        }
        StringBuilder out = new StringBuilder();
        for (String[] input : inputs) {
            byte[] data = input[1] == null ? Files.readAllBytes(new File(input[0]).toPath()) : unhex(input[1]);
            String result = decoder.line(input[0], data);
            if (decoder.status == 0) ok++;
            else if (decoder.status == 1) legacy++;
            else failed++;
            out.append(result).append('\n');
        }
        System.out.print(out);
        System.out.flush();
        System.err.printf("decoded %d (spec byte order), %d (legacy byte order), failed %d%n", ok, legacy, failed);
        System.exit(failed == 0 ? 0 : 1);
    }
}
