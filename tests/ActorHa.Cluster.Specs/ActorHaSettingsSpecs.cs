namespace ActorHa.Cluster.Specs;

public sealed class ActorHaSettingsSpecs
{
    [Theory]
    [InlineData("127.0.0.1:4051", "127.0.0.1", 4051)]
    [InlineData("node-2.actorha.svc:4052", "node-2.actorha.svc", 4052)]
    [InlineData("localhost:1", "localhost", 1)]
    [InlineData("::1:9153", "::1", 9153)]
    [InlineData("[::1]:9153", "[::1]", 9153)]
    public void A_host_and_port_that_remoting_can_address_are_read(string text, string host, int port)
    {
        Assert.True(ActorHaSettings.TryParseHostPort(text, out var readHost, out var readPort));
        Assert.Equal((host, port), (readHost, readPort));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData(":4051")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("host:-1")]
    [InlineData("host: 4051")]
    [InlineData("host:+4051")]
    [InlineData("a b:4051")]
    [InlineData("a\u0001b:4051")]
    [InlineData("a:1:2")]
    [InlineData("under_score!:4051")]
    public void Anything_else_is_not_a_host_and_port(string text)
    {
        Assert.False(ActorHaSettings.TryParseHostPort(text, out _, out _));
    }

    [Fact]
    public void A_host_name_longer_than_dns_allows_is_not_a_host_and_port()
    {
        Assert.False(ActorHaSettings.TryParseHostPort(new string('a', 3000) + ":4051", out _, out _));
    }

    [Theory]
    [InlineData("actorha")]
    [InlineData("ActorHa-2_b")]
    [InlineData("9lives")]
    public void A_cluster_name_akka_accepts_as_a_system_name_is_valid(string name)
    {
        Assert.Empty(new ActorHaSettings { ClusterName = name }.Validate());
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad name")]
    [InlineData("-dash")]
    [InlineData("_under")]
    [InlineData("dot.ted")]
    public void A_cluster_name_akka_would_refuse_is_one_problem_naming_the_setting(string name)
    {
        var problem = Assert.Single(new ActorHaSettings { ClusterName = name }.Validate());
        Assert.StartsWith("ActorHa:ClusterName must be letters, digits, '-' and '_'", problem);
    }

    [Fact]
    public void A_timeout_read_as_days_is_refused_with_the_range_and_the_format()
    {
        // "5" in configuration is TimeSpan.Parse("5"): five days.
        var problem = Assert.Single(new ActorHaSettings { RequestTimeout = TimeSpan.Parse("5", System.Globalization.CultureInfo.InvariantCulture) }.Validate());
        Assert.Equal("ActorHa:RequestTimeout must be between 00:00:00.001 and 00:10:00 (hh:mm:ss[.fff]), not 5.00:00:00.", problem);
    }

    [Fact]
    public void The_default_settings_are_valid()
    {
        Assert.Empty(new ActorHaSettings().Validate());
    }

    [Fact]
    public void A_negative_lease_ttl_is_one_problem_not_two()
    {
        var problem = Assert.Single(new ActorHaSettings { Lease = { Ttl = TimeSpan.FromDays(-1) } }.Validate());
        Assert.Equal("ActorHa:Lease:Ttl must be between 00:00:00.001 and 00:10:00 (hh:mm:ss[.fff]), not -1.00:00:00.", problem);
    }

    [Fact]
    public void Lease_timings_that_do_not_fit_in_the_ttl_are_one_problem_naming_all_three_values()
    {
        var problem = Assert.Single(new ActorHaSettings { Lease = { SafetyMargin = TimeSpan.FromSeconds(1) } }.Validate());
        Assert.Equal("ActorHa:Lease:SafetyMargin (00:00:01) + ActorHa:Lease:RenewInterval (00:00:00.15) must be shorter than ActorHa:Lease:Ttl (00:00:01).", problem);
    }

    [Fact]
    public void A_profile_that_is_not_a_file_of_hocon_profiles_is_refused_even_as_a_relative_path()
    {
        foreach (var profile in new[] { "nope", "../actorha" })
        {
            var problem = Assert.Single(new ActorHaSettings { AkkaProfile = profile }.Validate());
            Assert.StartsWith("ActorHa:AkkaProfile must be one of the files of", problem);
            Assert.Contains("akka-defaults", problem);
        }

        Assert.Empty(new ActorHaSettings { AkkaProfile = "akka-defaults" }.Validate());
    }

    [Fact]
    public void A_postgres_connection_string_with_an_unknown_keyword_is_refused_without_echoing_the_string()
    {
        var problem = Assert.Single(new ActorHaSettings { Store = StoreKind.Postgres, ConnectionString = "Hostx=1;Password=secret" }.Validate());
        Assert.StartsWith("ActorHa:ConnectionString is not a valid postgres connection string:", problem);
        Assert.DoesNotContain("secret", problem);
    }
}
