using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using PeftHost.Abstractions.Config;
using PeftHost.Engine.Errors;
using PeftHost.Engine.Plugins;
using PeftHost.Formats;
using PeftHost.Models;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Tests.Reliability;

/// <summary>The one mapping from an exception to what it means for the user (the README's exit-code table).</summary>
public class ErrorClassifierTests
{
    public static TheoryData<Exception, ErrorKind> Cases() => new()
    {
        { new TunerConfigException("r must be positive"), ErrorKind.Input },
        { new InvalidDataException("bad file"), ErrorKind.Input },
        { new ModelInputException("ids", "ids[0] is 999"), ErrorKind.Input },
        { new ArgumentOutOfRangeException("x"), ErrorKind.Input },
        { new KeyNotFoundException("no adapter"), ErrorKind.Input },
        { new NotSupportedException("cannot merge"), ErrorKind.Input },
        { new FileNotFoundException("no config.json"), ErrorKind.Input },
        { new DirectoryNotFoundException("no folder"), ErrorKind.Input },
        { new JsonException("not JSON"), ErrorKind.Input },
        { new TokenizerLoadException("tokenizer.json", "model", "missing"), ErrorKind.Input },
        { new ChatTemplateException("syntax"), ErrorKind.Input },
        { new IOException("No space left on device"), ErrorKind.Failure },
        { new AtomicWriteException("/x", true, new IOException("No space left on device", 28)), ErrorKind.Failure },
        { new UnauthorizedAccessException("denied"), ErrorKind.Failure },
        { new PluginFaultException("p", "1.0", "forward", new InvalidOperationException("boom")), ErrorKind.Failure },
        { new ExternalException("libtorch"), ErrorKind.Failure },
        { new NullReferenceException(), ErrorKind.Failure },
        { new OperationCanceledException(), ErrorKind.Interrupted },
        // Wrappers are looked through.
        { new TargetInvocationException(new InvalidDataException("bad")), ErrorKind.Input },
        { new AggregateException(new OperationCanceledException()), ErrorKind.Interrupted },
        { new TypeInitializationException("T", new IOException("disk")), ErrorKind.Failure },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_documented_error_type_has_its_kind(Exception e, ErrorKind kind) => Assert.Equal(kind, ErrorClassifier.Classify(e));

    [Fact]
    public void The_line_is_the_first_line_of_the_cause_and_names_an_undocumented_type()
    {
        var native = new ExternalException("shape '[2, 3]' is invalid for input of size 5\nException raised from view at aten/src/ATen/native/...\nframe #0: ...");
        Assert.Equal("ExternalException: shape '[2, 3]' is invalid for input of size 5", ErrorClassifier.Describe(native));
        Assert.False(ErrorClassifier.IsDocumented(native));
        Assert.Equal("bad row", ErrorClassifier.Describe(new TargetInvocationException(new InvalidDataException("bad row"))));
        Assert.True(ErrorClassifier.IsDocumented(new PluginFaultException("p", "1.0", "apply", new InvalidOperationException("x"))));
        Assert.Equal("NullReferenceException: Object reference not set to an instance of an object.", ErrorClassifier.Describe(new NullReferenceException()));
    }
}
