import java.lang.reflect.Field;

/**
 * Starts JMeter in the same way as its own launcher, after letting its XStream instances load
 * JMeter's classes. Debian 12 pairs JMeter 2.13 with libxstream-java 1.4.20, whose security
 * framework refuses every class it was not told about, so the packaged `jmeter` cannot load
 * any test plan (ForbiddenClassException: org.apache.jmeter.save.ScriptWrapper). The plans
 * it loads are the operator's own files, so allowing their types is safe here.
 * bench/jmeter/run.sh compiles and uses this when it finds Debian's package.
 */
public class SlabfrontJMeter {
    public static void main(String[] args) throws Exception {
        String home = System.getProperty("jmeter.home", "/usr/share/jmeter");
        org.apache.jmeter.util.JMeterUtils.setJMeterHome(home);
        org.apache.jmeter.util.JMeterUtils.loadJMeterProperties(home + "/bin/jmeter.properties");
        Class<?> ss = Class.forName("org.apache.jmeter.save.SaveService");
        for (String name : new String[] {"JMXSAVER", "JTLSAVER"}) {
            Field f = ss.getDeclaredField(name);
            f.setAccessible(true);
            com.thoughtworks.xstream.XStream x = (com.thoughtworks.xstream.XStream) f.get(null);
            x.addPermission(com.thoughtworks.xstream.security.AnyTypePermission.ANY);
        }
        new org.apache.jmeter.JMeter().start(args);
    }
}
