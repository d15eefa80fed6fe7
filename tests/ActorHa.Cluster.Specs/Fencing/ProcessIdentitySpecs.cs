using System.Diagnostics;
using ActorHa.Cluster.Fencing;

namespace ActorHa.Cluster.Specs.Fencing;

public sealed class ProcessIdentitySpecs
{
    [Fact]
    public void This_process_names_itself_and_its_role_reads_back_as_the_same_identity()
    {
        var self = ProcessIdentity.Current;

        Assert.NotNull(self);
        Assert.Equal(Environment.ProcessId, self.Pid);
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(), self.BootId);
        Assert.Equal(self, ProcessIdentity.Parse(self.Role));
        Assert.Equal(self, ProcessIdentity.FromRoles(["kv", "http=http://127.0.0.1:8081", self.Role]));
    }

    [Theory]
    [InlineData("process=")]
    [InlineData("process=boot/4026531836/123")]
    [InlineData("process=boot/4026531836/123/456/7")]
    [InlineData("process=/4026531836/123/456")]
    [InlineData("process=boot//123/456")]
    [InlineData("process=boot/4026531836/0/456")]
    [InlineData("process=boot/4026531836/-5/456")]
    [InlineData("process=boot/4026531836/123/x")]
    [InlineData("http=http://127.0.0.1:8081")]
    public void A_role_that_does_not_name_a_process_exactly_names_none(string role)
    {
        Assert.Null(ProcessIdentity.Parse(role));
        Assert.Null(ProcessIdentity.FromRoles([role]));
    }

    [Fact]
    public void A_process_whose_name_holds_parentheses_and_spaces_is_read_by_its_real_fields()
    {
        // arrange: the kernel's name for a process is its file's name, and /proc/PID/stat prints it as "(name)"
        var dir = Directory.CreateTempSubdirectory("actorha-stat-");
        var program = Path.Combine(dir.FullName, "a) T (b 1 2");
        File.Copy("/bin/sleep", program); // keeps its mode: executable
        using var child = Process.Start(new ProcessStartInfo(program, "60") { UseShellExecute = false })!;
        try
        {
            // act
            var stat = HostProcesses.ReadStat(child.Id);

            // assert: running or sleeping, not the 'T' in its name; the start time after our own
            Assert.NotNull(stat);
            Assert.False(stat.Value.IsStopped);
            Assert.True(stat.Value.StartTicks >= ProcessIdentity.Current!.StartTicks);
        }
        finally
        {
            child.Kill();
            child.WaitForExit();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_process_that_does_not_exist_has_no_stat()
    {
        Assert.Null(HostProcesses.ReadStat(int.MaxValue));
    }
}
