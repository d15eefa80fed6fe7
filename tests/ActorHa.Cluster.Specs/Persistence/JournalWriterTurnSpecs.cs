using System.Diagnostics;
using ActorHa.Cluster.Persistence;

namespace ActorHa.Cluster.Specs.Persistence;

/// <summary>
/// How long this process's journal writer has waited for its turn, which the file-lock fence reads: another process
/// (a child `flock -F -x … sleep`, as a node stopped inside a commit) holds the turn.
/// </summary>
public sealed class JournalWriterTurnSpecs : IDisposable
{
    private readonly string _database = Path.Combine(Path.GetTempPath(), $"actorha-turn-spec-{Guid.NewGuid():N}.db");

    public void Dispose()
    {
        File.Delete(_database);
        File.Delete(JournalWriterTurn.LockFilePath(_database));
    }

    [Fact]
    public async Task A_writer_waiting_for_a_turn_another_process_holds_reports_its_wait_for_that_database_only_and_zero_once_it_has_the_turn()
    {
        // arrange: this process's turn on the database, and a child that holds the turn's lock
        using var turn = JournalWriterTurn.For($"Data Source={_database}");
        Assert.NotNull(turn);
        using var child = Process.Start(new ProcessStartInfo("flock", ["-F", "-x", JournalWriterTurn.LockFilePath(_database), "sleep", "120"]) { UseShellExecute = false })!;
        try
        {
            await WaitUntil(() => File.ReadLines("/proc/locks").Any(l => l.Contains($" FLOCK ", StringComparison.Ordinal) && l.Contains($" WRITE {child.Id} ", StringComparison.Ordinal)), "the child took the lock");
            Assert.Equal(TimeSpan.Zero, JournalWriterTurn.LongestWaiting(_database));

            // act: the writer asks for its turn, and waits
            var taken = Task.Factory.StartNew(() => turn!.Take(), TaskCreationOptions.LongRunning);
            await WaitUntil(() => JournalWriterTurn.LongestWaiting(_database) >= TimeSpan.FromMilliseconds(300), "the wait reached 300 ms");

            // assert: the wait grows while the child holds the lock, and is this database's only
            Assert.False(taken.IsCompleted);
            Assert.Equal(TimeSpan.Zero, JournalWriterTurn.LongestWaiting(_database + "-another"));
            child.Kill();
            using (await taken.WaitAsync(TimeSpan.FromSeconds(10)))
            {
                Assert.Equal(TimeSpan.Zero, JournalWriterTurn.LongestWaiting(_database));
            }
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill();
            }
        }
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 10 s: {what}");
            await Task.Delay(10);
        }
    }
}
