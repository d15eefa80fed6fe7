using ActorHa.Cluster.Fencing;
using Microsoft.Data.Sqlite;

namespace ActorHa.Cluster.Specs.Fencing;

public sealed class FileLocksSpecs
{
    [Fact]
    public void Only_held_write_locks_on_the_given_inodes_name_their_holders()
    {
        string[] lines =
        [
            "1: POSIX  ADVISORY  WRITE 28334 fe:00:11657486 120 120",
            "1: -> POSIX  ADVISORY  WRITE 28335 fe:00:11657486 120 120",
            "2: POSIX  ADVISORY  READ 28336 fe:00:11657486 128 128",
            "3: FLOCK  ADVISORY  WRITE 28337 fe:00:11657487 0 EOF",
            "4: OFDLCK ADVISORY  WRITE -1 fe:00:11657486 0 EOF",
            "5: POSIX  ADVISORY  WRITE 28338 fe:00:99 0 EOF",
            "garbage",
        ];

        var holders = FileLocks.WriteLockHolders(lines, new HashSet<ulong> { 11657486, 11657487 });

        Assert.Equal([28334, 28337], holders.Order());
    }

    [Fact]
    public void An_sqlite_write_transaction_in_wal_mode_shows_this_process_as_a_holder_until_it_commits()
    {
        // arrange
        var file = Path.Combine(Path.GetTempPath(), $"actorha-filelocks-{Guid.NewGuid():N}.db");
        try
        {
            using var connection = new SqliteConnection($"Data Source={file};Pooling=False");
            connection.Open();
            using (var wal = connection.CreateCommand())
            {
                wal.CommandText = "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);";
                wal.ExecuteNonQuery();
            }

            var inodes = FileLocks.Inodes(file, file + "-shm", file + "-wal", file + "-missing");
            Assert.Equal(3, inodes.Count);

            // act
            using var tx = connection.BeginTransaction(deferred: false);
            var during = FileLocks.WriteLockHolders(inodes);
            tx.Commit();
            var after = FileLocks.WriteLockHolders(inodes);

            // assert
            Assert.Contains(Environment.ProcessId, during);
            Assert.DoesNotContain(Environment.ProcessId, after);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            foreach (var f in new[] { file, file + "-shm", file + "-wal" })
            {
                File.Delete(f);
            }
        }
    }
}
