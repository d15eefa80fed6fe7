using System.Runtime.Serialization;
using ActorHa.Cluster.Persistence;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ActorHa.Cluster.Specs.Persistence;

/// <summary>Which recovery failures a partition treats as unrecoverable (refused at once, retried rarely), and which it retries soon.</summary>
public sealed class StoreDamageSpecs
{
    public static TheoryData<Exception, string> Unrecoverable() => new()
    {
        { new SqliteException("SQLite Error 11: 'database disk image is malformed'.", 11), "the store reports damage (SQLite Error 11" },
        { new SqliteException("SQLite Error 26: 'file is not a database'.", 26), "the store reports damage (SQLite Error 26" },
        { new PostgresException("invalid page in block 7 of relation base/16384/16385", "ERROR", "ERROR", "XX001"), "the store reports damage (XX001" },
        // As Akka.Persistence.Sql's replay hands it over: the serializer's error inside the stream's AggregateException.
        { new AggregateException(new SerializationException("KvSerializer: 2 bytes are not a valid 'kv.written.v2'")), "a stored event cannot be read (KvSerializer: 2 bytes" },
        { new InvalidOperationException("replay failed", new SerializationException("KvSerializer does not know the manifest 'kv.written.v9'.")), "a stored event cannot be read (KvSerializer does not know" },
    };

    public static TheoryData<Exception> Passing() =>
    [
        new TimeoutException("Recovery timed out, didn't get event within 30s"),
        new SqliteException("SQLite Error 5: 'database is locked'.", 5),
        new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01"),
        new NpgsqlException("Failed to connect to 127.0.0.1:5432", new System.Net.Sockets.SocketException(111)),
        new AggregateException(new TimeoutException("a query timed out")),
    ];

    [Theory]
    [MemberData(nameof(Unrecoverable))]
    public void A_failure_that_no_retry_can_cure_is_named_as_such(Exception failure, string expectedStart)
    {
        Assert.StartsWith(expectedStart, StoreDamage.Unreadable(failure), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Passing))]
    public void A_failure_a_retry_may_cure_is_not_unrecoverable(Exception failure)
    {
        Assert.Null(StoreDamage.Unreadable(failure));
    }
}
