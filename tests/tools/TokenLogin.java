// Logs in through the gateway with a token as the password, over TLS, by
// JDBC (PgJDBC or MariaDB Connector/J), and prints one value.
//
// usage: java -cp DRIVER.jar TokenLogin.java postgresql|mariadb PORT USER DATABASE CA_FILE
// The token is read from the TOKEN environment variable (never argv).
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

public class TokenLogin {
    public static void main(String[] args) throws Exception {
        String kind = args[0], port = args[1], user = args[2], db = args[3], ca = args[4];
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", System.getenv("TOKEN"));
        String url;
        if (kind.equals("postgresql")) {
            url = "jdbc:postgresql://127.0.0.1:" + port + "/" + db;
            p.setProperty("sslmode", "verify-full");
            p.setProperty("sslrootcert", ca);
        } else {
            url = "jdbc:mariadb://127.0.0.1:" + port + "/" + db;
            p.setProperty("useSsl", "true");
            p.setProperty("serverSslCert", ca);
        }
        try (Connection c = DriverManager.getConnection(url, p);
             Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT CONCAT('in as ', 'token')")) {
            r.next();
            System.out.println(r.getString(1));
        }
    }
}
