/** The plain-Java reference of every op, the conformance runner, golden vectors and the demo. */
module dev.dsk4j.conformance {
    requires dev.dsk4j;
    requires ai.djl.tokenizers;
    exports dev.dsk4j.conformance;
}
