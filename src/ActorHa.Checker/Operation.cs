using System.Text.Json.Serialization;

namespace ActorHa.Checker;

/// <summary>What a client attempted.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<OpKind>))]
public enum OpKind
{
    /// <summary>Unconditional write.</summary>
    Put,

    /// <summary>Compare-and-set: write only if the key is at ExpectedVersion (0 = absent).</summary>
    Cas,

    Get,

    Delete,
}

/// <summary>How it ended, as Jepsen classifies it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<OpResult>))]
public enum OpResult
{
    /// <summary>Acknowledged: it happened (for a read: this is what it saw; NotFound for a read of nothing).</summary>
    Ok,

    /// <summary>Definitely did not happen (refused: 412, 404 on delete, 400…).</summary>
    Fail,

    /// <summary>Unknown: timeout, connection reset, 503 after sending. It may or may not have happened.</summary>
    Info,
}

/// <summary>
/// One client operation on a versioned register. Times are monotonic (any unit, one clock for the whole
/// history). For an ok write, Version is the version the store assigned; for an ok read, the version it saw,
/// with Value null and NotFound true when the key was absent.
/// </summary>
public sealed record Operation(
    int Process,
    OpKind Op,
    string Key,
    string? Value,
    long Start,
    long End,
    OpResult Result,
    long? Version = null,
    long? ExpectedVersion = null,
    bool NotFound = false)
{
    public bool IsWrite => Op is OpKind.Put or OpKind.Cas or OpKind.Delete;
}
