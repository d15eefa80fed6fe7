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

    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a/.")]
    [InlineData("a/..")]
    [InlineData("../b")]
    [InlineData("a/./b")]
    [InlineData("a/../b")]
    public void A_key_with_a_dot_or_dot_dot_segment_is_invalid(string key)
    {
        Assert.Contains("'.' or '..' segment", Keys.Validate(key));
    }

    [Theory]
    [InlineData("a.")]
    [InlineData("...")]
    [InlineData(".hidden/x")]
    [InlineData("a/..b/c.")]
    [InlineData("a//b/")]
    public void Dots_that_are_not_a_whole_segment_are_valid(string key)
    {
        Assert.Null(Keys.Validate(key));
    }

    [Theory]
    [InlineData("user/42")]
    [InlineData("100%/a%2Fb")]
    [InlineData("q?x=1#frag")]
    [InlineData("with space/+plus")]
    [InlineData("clé 日本 😀/ü")]
    [InlineData("a//b/")]
    public void An_escaped_key_unescapes_to_itself_with_its_slashes_as_the_only_unescaped_reserved_characters(string key)
    {
        // act
        var escaped = Keys.Escape(key);
        var ok = Keys.TryUnescape(escaped, out var back, out _);

        // assert
        Assert.True(ok);
        Assert.Equal(key, back);
        Assert.Equal(key.Count(c => c == '/'), escaped.Count(c => c == '/'));
        Assert.All(escaped, c => Assert.True(char.IsAsciiLetterOrDigit(c) || c is '/' or '%' or '-' or '_' or '.' or '~', $"'{c}' in {escaped}"));
    }

    [Theory]
    [InlineData("a%2Fb", "a/b")]
    [InlineData("a%252Fb", "a%2Fb")]
    [InlineData("%C3%A9t%C3%A9", "été")]
    [InlineData("%7e%7E", "~~")]
    [InlineData("plain", "plain")]
    public void Unescaping_decodes_every_escape_exactly_once_as_UTF_8(string escaped, string key)
    {
        Assert.True(Keys.TryUnescape(escaped, out var decoded, out _));
        Assert.Equal(key, decoded);
    }

    [Theory]
    [InlineData("%FF", "UTF-8")]
    [InlineData("%C3%28", "UTF-8")]
    [InlineData("%ED%A0%80", "UTF-8")]
    [InlineData("a%2", "two hex digits")]
    [InlineData("a%zz", "two hex digits")]
    [InlineData("é", "outside ASCII")]
    public void Unescaping_refuses_malformed_escapes_and_bytes_that_are_not_UTF_8(string escaped, string problem)
    {
        Assert.False(Keys.TryUnescape(escaped, out _, out var reason));
        Assert.Contains(problem, reason);
    }
}
