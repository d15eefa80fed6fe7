using ActorHa.Cluster.Persistence;
using ActorHa.Launcher;
using Npgsql;

namespace ActorHa.Cluster.Specs.Persistence;

/// <summary>What a node learns of its PostgreSQL store before it starts, and says in its first log lines.</summary>
public sealed class ClusterMetadataStoreSpecs
{
    [Fact]
    public void A_database_that_acknowledges_commits_before_they_are_on_disk_is_reported_with_a_warning_and_a_durable_one_without()
    {
        // arrange: two databases, one of them with synchronous_commit=off for every session
        var durable = new ActorHaSettings { Store = StoreKind.Postgres, ConnectionString = PostgresServer.Shared.CreateDatabase() };
        var careless = new ActorHaSettings { Store = StoreKind.Postgres, ConnectionString = PostgresServer.Shared.CreateDatabase() };
        var database = new NpgsqlConnectionStringBuilder(careless.ConnectionString).Database;
        using (var connection = new NpgsqlConnection(durable.ConnectionString))
        {
            connection.Open();
            using var alter = new NpgsqlCommand($"ALTER DATABASE {database} SET synchronous_commit = off", connection);
            alter.ExecuteNonQuery();
        }

        // act
        var durableInfo = ClusterMetadataStore.Prepare(durable);
        var carelessInfo = ClusterMetadataStore.Prepare(careless);

        // assert
        Assert.Equal("synchronous_commit=on", durableInfo.Durability);
        Assert.Null(durableInfo.DurabilityWarning);
        Assert.Equal("synchronous_commit=off", carelessInfo.Durability);
        Assert.Contains("can be lost", carelessInfo.DurabilityWarning, StringComparison.Ordinal);
    }
}
