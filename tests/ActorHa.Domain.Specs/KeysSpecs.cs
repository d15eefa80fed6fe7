using ActorHa.Domain;

namespace ActorHa.Domain.Specs;

public sealed class KeysSpecs
{
    [Theory]
    [InlineData("a")]
    [InlineData("user/42/profile")]
    [InlineData("clé 日本 😀")]
    public void Ordinary_keys_are_valid(string key)
    {
        Assert.Null(Keys.Validate(key));
    }

    [Fact]
    public void A_key_of_exactly_512_UTF_8_bytes_is_valid_and_513_is_not()
    {
        Assert.Null(Keys.Validate(new string('k', 512)));
        Assert.Contains("512", Keys.Validate(new string('k', 513)));
        // 'é' is two UTF-8 bytes: 257 of them are 514 bytes although only 257 chars.
        Assert.NotNull(Keys.Validate(new string('é', 257)));
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    public void An_empty_key_is_invalid(string? key)
    {
        Assert.Contains("empty", Keys.Validate(key));
    }

    [Theory]
    [InlineData("a\0b")]
    [InlineData("line\nbreak")]
    [InlineData("tab\t")]
    [InlineData("del\u007f")]
    public void Control_characters_are_invalid(string key)
    {
        Assert.Contains("control character", Keys.Validate(key));
    }

    [Fact]
    public void A_lone_surrogate_is_invalid()
    {
        Assert.NotNull(Keys.Validate("bad\ud800"));
    }
}
