/*
 * Writes the golden single-object messages of this folder with the Apache Avro Java library
 * (Debian libavro-java 1.8.2): for every <Name>.avro.json (one value in Avro's JSON encoding) the
 * message BinaryMessageEncoder writes for the schema <namespace>.<Name>.avsc, as <Name>.java.bin;
 * int.avro.json is encoded with the schema "int" (the specification's fingerprint example).
 * Nothing from TritonTube takes part, so tests/contract/test_spec_encoding.py compares our codec
 * with an independent implementation. Regenerate (only when a schema changes) with:
 *
 *   CP=/usr/share/java/avro.jar:/usr/share/java/jackson-core-asl.jar:\
 *      /usr/share/java/jackson-mapper-asl.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar
 *   java -cp "$CP" tests/contract/golden/spec/EncodeGolden.java src/tritontube/schemas tests/contract/golden/spec
 */

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
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
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.message.BinaryMessageEncoder;

public class EncodeGolden {

    static Map<String, Schema> parseFolder(File folder) throws IOException {
        File[] files = folder.listFiles((dir, name) -> name.endsWith(".avsc"));
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
                    rest.add(f);
                    last = e;
                }
            }
            if (rest.size() == pending.size()) throw last;
            pending = rest;
        }
        return known;
    }

    public static void main(String[] args) throws IOException {
        Map<String, Schema> schemas = parseFolder(new File(args[0]));
        File out = new File(args[1]);
        File[] inputs = out.listFiles((dir, name) -> name.endsWith(".avro.json"));
        Arrays.sort(inputs);
        for (File input : inputs) {
            String name = input.getName().substring(0, input.getName().length() - ".avro.json".length());
            Schema schema = name.equals("int")
                    ? Schema.create(Schema.Type.INT)
                    : schemas.get("tritontube.events." + name);
            String json = new String(Files.readAllBytes(input.toPath()), StandardCharsets.UTF_8);
            Object value = new GenericDatumReader<Object>(schema)
                    .read(null, DecoderFactory.get().jsonDecoder(schema, json));
            ByteBuffer message = new BinaryMessageEncoder<Object>(GenericData.get(), schema).encode(value);
            byte[] bytes = new byte[message.remaining()];
            message.get(bytes);
            Files.write(new File(out, name + ".java.bin").toPath(), bytes);
            System.out.println(name + ".java.bin " + bytes.length + " bytes, header " + hex(bytes, 10));
        }
    }

    static String hex(byte[] b, int n) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < n && i < b.length; i++) s.append(String.format("%02x", b[i]));
        return s.toString();
    }
}
