using PeftHost.Engine.Inference;
using Xunit;

namespace PeftHost.Tests.Inference;

public class AdapterSpecTests
{
    [Fact]
    public void Adapters_are_named_after_their_folder_unless_a_name_is_given()
    {
        Assert.Equal(new LogitsRunner.AdapterSpec("sql", "/data/adapters/x"), LogitsRunner.AdapterSpec.Parse("sql=/data/adapters/x", 0));
        Assert.Equal("lora_qv", LogitsRunner.AdapterSpec.Parse("/data/adapters/lora_qv/", 0).Name);
        Assert.Equal("my_adapter_v2", LogitsRunner.AdapterSpec.Parse("/data/my.adapter.v2", 1).Name); // '.' is not allowed in adapter names
        Assert.Equal("/data/adapters/lora_qv/", LogitsRunner.AdapterSpec.Parse("/data/adapters/lora_qv/", 0).Folder);
    }
}
