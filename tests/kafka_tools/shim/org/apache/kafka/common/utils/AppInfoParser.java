package org.apache.kafka.common.utils;

/**
 * kafka-clients 4.4 moved AppInfoParser to org.apache.kafka.common.utils.internals, but the
 * newest connect-file on Maven Central (4.3.x) still calls it here from its connectors'
 * version(). This class forwards the two calls it makes; tests/kafka_tools/install adds it
 * to the classpath only when the installed connect-file needs it.
 */
public final class AppInfoParser {
    private AppInfoParser() {
    }

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }

    public static String getCommitId() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getCommitId();
    }
}
